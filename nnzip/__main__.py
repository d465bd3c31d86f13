from nnzip.cli import main

main()
