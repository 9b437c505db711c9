"""What a leaked credential looks like, for spec validation and the dataset check alike.

Dependency-free on purpose: the dataset check imports it without the rest of infra.
"""

import re

CREDENTIAL = re.compile(
    r"(hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|sk-[A-Za-z0-9]{32,}"
    r"|AccountKey=[A-Za-z0-9+/=]{20,}|[A-Za-z0-9+/]{86}==)"
)
