"""Each stack's Kubernetes version is inside AKS's support window today.

The window comes from infra/data/aks-kubernetes-versions.yaml (the AKS release calendar, with its source
and the date it was checked). The tests use today's date on purpose: a version running out of support,
or a calendar nobody has re-checked for half a year, fails the suite before it fails a `pulumi up`.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from infra.config import K8S_VERSION
from infra.plan import load_stack_config, stacks
from infra.specs import REPO_ROOT

CALENDAR = yaml.safe_load((REPO_ROOT / "infra" / "data" / "aks-kubernetes-versions.yaml").read_text())
MAX_AGE_DAYS = 183


def month_start(text: str) -> dt.date:
    year, month = (int(part) for part in text.split("-"))
    return dt.date(year, month, 1)


def supported_on(minor: str, day: dt.date) -> bool:
    """From the first day of the GA month until before the first day of the end-of-life month."""
    entry = CALENDAR["versions"].get(minor)
    return bool(entry) and month_start(entry["ga"]) <= day < month_start(entry["end_of_life"])


def test_the_calendar_names_its_source_and_check_date():
    assert CALENDAR["source"].startswith("https://learn.microsoft.com/")
    assert isinstance(CALENDAR["checked"], dt.date)


def test_the_calendar_was_checked_within_half_a_year():
    age = (dt.date.today() - CALENDAR["checked"]).days
    assert age <= MAX_AGE_DAYS, (f"infra/data/aks-kubernetes-versions.yaml checked {CALENDAR['checked']}: "
                                 f"re-read {CALENDAR['source']} and update it")


@pytest.mark.parametrize("stack", stacks())
def test_the_stacks_version_is_supported_by_aks_today(stack):
    version = load_stack_config(stack).kubernetes_version
    assert K8S_VERSION.match(version)
    minor = ".".join(version.split(".")[:2])
    assert supported_on(minor, dt.date.today()), (
        f"Pulumi.{stack}.yaml kaito-gitops:kubernetesVersion {version}: outside AKS's support window "
        f"{CALENDAR['versions'].get(minor)} ({CALENDAR['source']})")


@pytest.mark.parametrize("minor,day,expected", [
    ("1.34", dt.date(2026, 10, 31), True),
    ("1.34", dt.date(2026, 11, 1), False),  # the month its support ends counts as ended
    ("1.33", dt.date(2026, 11, 24), False),
    ("1.37", dt.date(2026, 9, 30), False),  # not GA yet
    ("1.99", dt.date(2026, 11, 24), False),  # not on the calendar
])
def test_the_window_rule(minor, day, expected):
    assert supported_on(minor, day) is expected
