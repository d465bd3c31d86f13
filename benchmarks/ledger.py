"""The results ledger: measurements of finished runs, kept in the repository.

Run folders hold checkpoints of many megabytes and stay out of git, so they are lost with the
machine that trained them. The ledger (a JSON file under benchmarks/results/) keeps what the
reports need from each run: its recipe, its training record and its evaluation. A report
script uses a ledger entry when the run folder is missing and the entry's recipe equals the
recipe it would train, so the report can be written again without training again. Each entry
carries the date it was measured, and the reports show it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


class Ledger:
    """A JSON file of named entries, each with a recipe, written back after every change."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"entries": {}}

    def lookup(self, name: str, recipe: dict) -> dict | None:
        """Return the entry `name` if it was measured with `recipe`, else None."""
        entry = self.data["entries"].get(name)
        if entry is None or entry["recipe"] != normalized(recipe):
            return None
        return entry

    def record(self, name: str, recipe: dict, **fields) -> dict:
        """Store `fields` under `name`, dated today; an entry with another recipe is replaced."""
        entry = self.data["entries"].get(name)
        if entry is None or entry["recipe"] != normalized(recipe):
            entry = {"recipe": normalized(recipe)}
        entry.update(fields)
        entry["measured"] = datetime.date.today().isoformat()
        entry["machine"] = machine()
        entry.pop("source", None)  # a new measurement replaces a transcribed one
        self.data["entries"][name] = entry
        self.save()
        return entry

    def put(self, name: str, value: dict) -> None:
        """Store a value with no recipe (such as a whole ablation's results) under `name`, dated today."""
        self.data[name] = {**value, "measured": datetime.date.today().isoformat(), "machine": machine()}
        self.save()

    def get(self, name: str):
        return self.data.get(name)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")


def normalized(recipe: dict) -> dict:
    """Return `recipe` with data files reduced to their names, so that the recipe of a run does
    not depend on the folder it was trained in."""
    result = dict(recipe)
    if result.get("data"):
        result["data"] = [Path(path).name for path in result["data"]]
    return json.loads(json.dumps(result))  # tuples become lists, as in the file


def machine() -> str:
    """Describe this machine as the reports do: its core count and CPU model."""
    return f"{os.cpu_count()} CPU cores ({cpu_model()})"


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo, else the platform's machine name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
