#!/bin/bash
for m in none branch none branch; do
  echo "== $m $(date -u +%T) $(uptime | sed 's/.*load/load/')"
  S23_SIM=$m /usr/bin/time -f "cpu user %U s sys %S s wall %e s" /work/wt-s23/.venv/bin/python -m pytest -q -p no:cacheprovider test_one_ms.py --otel-overhead --otel-overhead-json=cpu-$m.json 2>&1 | grep -E "cpu user|passed|failed"
  /work/wt-s23/.venv/bin/python -c "import json;t=json.load(open('cpu-$m.json'))['tests'][0];m=t['metrics'];print('duration',round(t['duration_s'],1),'cycles',m['cycles']['overhead'],'instr',m['instructions']['overhead'])"
done
echo "== end $(date -u +%T) $(uptime | sed 's/.*load/load/')"
