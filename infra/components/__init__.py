"""One Pulumi ComponentResource per concern; each parents its children and registers its outputs."""
