"""What a leaked credential looks like, for spec validation and the dataset check alike.

In trainer/ because the trainer image ships only this package; infra (spec validation) imports it from
here. Dependency-free on purpose: importing it needs neither torch nor the rest of the trainer.
Every pattern runs in linear time over text of any length: each repeat is either bounded or
starts at a fixed prefix, and the bare base64 key only at the start of a base64 run (a
lookbehind), so a megabyte of base64 is not rescanned from every position.
"""

import re

CREDENTIAL = re.compile(
    r"(hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|AKIA[0-9A-Z]{16}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|sk-[A-Za-z0-9]{32,}"
    r"|AccountKey=[A-Za-z0-9+/=]{20,}|(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==)"
)
# Query parameters that make a URL a bearer credential: Azure SAS (sig), AWS SigV4 presigned URLs
# (X-Amz-Signature), Google Cloud Storage V4 (X-Goog-Signature), and V2-style or CloudFront (Signature).
SIGNED_URL = re.compile(r"[?&](sig|x-amz-signature|x-goog-signature|signature)=[^&#\s]", re.IGNORECASE)
