#!/usr/bin/env python3
"""Regenerate README.md's broker configuration table from BROKER_CONFIG_KEYS in
crates/strom-broker/src/config/keys.rs (a unit test there checks every key is listed)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTS = {"LONG_MAX": "Long.MAX", "DOUBLE_MAX": "Double.MAX", "INT_MAX": "Int.MAX"}

source = (ROOT / "crates/strom-broker/src/config/keys.rs").read_text()
start = source.index("pub const BROKER_CONFIG_KEYS")
body = source[start:source.index("];", start)]
rows = []
for name, raw, default, doc in re.findall(
    r'key\(\s*"([^"]+)",\s*("([^"]*)"|[A-Z_]+),\s*ConfigType::\w+,\s*"((?:[^"\\]|\\.)*)"\s*,?\s*\)', body, re.S
):
    doc = doc.replace('\\"', '"').replace("|", "\\|")
    if not raw.startswith('"'):
        shown = CONSTS.get(raw, raw)
    elif default == "":
        shown = "*(empty)*"
    else:
        shown = "`" + default.replace("|", "\\|") + "`"
    rows.append(f"| `{name}` | {shown} | {doc} |")
table = "| key | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"

readme_path = ROOT / "README.md"
readme = readme_path.read_text()
begin = readme.index("| key | default | meaning |")
end = readme.index("\n\n", begin) + 1
readme_path.write_text(readme[:begin] + table + readme[end:])
print(f"{len(rows)} keys")
