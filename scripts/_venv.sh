# Sourced by scripts/demo and scripts/test: use the active virtualenv, or create ./.venv,
# then install the core, every plugin and the dev tools (editable).
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  . .venv/bin/activate
fi
python -m pip install -q --upgrade 'pip>=25.1'
plugins=()
for p in plugins/*/ docs/examples/*/; do [ -f "$p/pyproject.toml" ] && plugins+=(-e "$p"); done
python -m pip install -q --group dev -e core "${plugins[@]}"
