import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "checklists" / "prod-k8s-deployment.md"
DEMO = ROOT / "checklists" / "demo.md"
# Sessions created by tests never land in the real state directory.
os.environ.setdefault("RUNBOOK_SESSION_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / f"runbook-test-sessions-{os.getpid()}"))
