"""qcluster command line (placeholder until the cluster lands)."""


def main() -> None:
    raise SystemExit("qcluster: not built yet")
