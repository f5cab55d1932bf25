"""Map raw shop categories/types to model classes using the rules in data/categories.yaml."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CATEGORIES = Path(__file__).resolve().parent.parent / "data" / "categories.yaml"


class CategoriesError(ValueError):
    """Raised when a categories file is missing or malformed."""


@dataclass(frozen=True)
class Rule:
    """One mapping rule: any of `patterns` found in a category gives `klass` (None excludes)."""

    klass: str | None
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, category: str) -> bool:
        """True when any pattern is found in the category."""
        return any(p.search(category) for p in self.patterns)


@dataclass(frozen=True)
class CategoryMap:
    """The model's class list plus ordered rules mapping shop categories to those classes."""

    classes: tuple[str, ...]
    rules: tuple[Rule, ...]

    def classify(self, category: str | None) -> str | None:
        """Return the model class for a shop category, or None when unmapped or excluded."""
        if not category:
            return None
        text = " ".join(category.split())
        for rule in self.rules:
            if rule.matches(text):
                return rule.klass
        return None


def read_yaml(path: Path, error: type[ValueError], what: str) -> Any:
    """Parse a YAML file; a missing file or bad YAML raises `error` with a one-line message."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc


def load_categories(path: str | Path = DEFAULT_CATEGORIES) -> CategoryMap:
    """Read and validate a categories YAML file."""
    path = Path(path)
    doc = read_yaml(path, CategoriesError, "categories")
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise CategoriesError(f"{path}: expected a mapping with a 'classes' list")
    classes = tuple(str(c) for c in doc["classes"])
    if not classes or classes[0] != "background" or len(set(classes)) != len(classes):
        raise CategoriesError(f"{path}: 'classes' must start with 'background' and have no repeats")
    rules = []
    for i, raw in enumerate(doc.get("rules") or []):
        if not isinstance(raw, dict) or "class" not in raw or "match" not in raw:
            raise CategoriesError(f"{path}: rule {i} needs 'class' and 'match'")
        klass = raw["class"]
        if klass is not None and klass not in classes[1:]:
            raise CategoriesError(f"{path}: rule {i} names unknown class {klass!r}")
        patterns = raw["match"] if isinstance(raw["match"], list) else [raw["match"]]
        try:
            compiled = tuple(re.compile(str(p), re.IGNORECASE) for p in patterns)
        except re.error as exc:
            raise CategoriesError(f"{path}: rule {i} has a bad regex: {exc}") from exc
        rules.append(Rule(klass, compiled))
    return CategoryMap(classes, tuple(rules))
