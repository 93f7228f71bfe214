#!/bin/bash
for m in none cache branch none cache branch; do
  echo "== $m $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  S23_SIM=$m /work/wt-s23/.venv/bin/python -m pytest -q -p no:cacheprovider test_one_ms.py --otel-overhead --otel-overhead-json=$m.json 2>&1 | grep -E "estimated cycles  |passed|failed"
  /work/wt-s23/.venv/bin/python -c "import json;t=json.load(open('$m.json'))['tests'][0];m=t['metrics'];print('duration',round(t['duration_s'],1),'cycles',m['cycles']['overhead'],'instr',m['instructions']['overhead'], 'base instr', m['instructions']['baseline'])"
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
