#!/usr/bin/env python3
"""Renames, swaps, names taken by files, moves and writes made while evindex runs.

usage: churn.py EVINDEX WORKDIR SEED [ROUNDS]

Each round churns a generated tree from a thread while three runs index it (1, 2 and 3
threads), then stops, makes two quiet rescans and compares `ls -R --json` with a walk of
the tree (os.walk: an oracle independent of evindex) and runs `verify`. Prints one line a
round; exits 1 at the first round that is not exact.
"""
import base64, faulthandler, json, os, random, shutil, subprocess, sys, threading, time
# A hang is a failure with a stack, not a stuck test run.
faulthandler.dump_traceback_later(240, exit=True)
E = sys.argv[1]; base = sys.argv[2]; seed = int(sys.argv[3]); rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 4
mktree = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'mktree.py')
random.seed(seed)
root = os.path.join(base, 't'); db = os.path.join(base, 'db')
shutil.rmtree(base, ignore_errors=True); os.makedirs(base)
subprocess.run([sys.executable, mktree, root, '--entries', '3000', '--seed', str(seed)], check=True, capture_output=True)
subprocess.run([E, 'run', root, '--db', db], check=True, capture_output=True)
stop = False
def entries():
    out = []
    for d, ds, fs in os.walk(root):
        for n in ds + fs: out.append(os.path.join(d, n))
    return out
def churn():
    r = random.Random(seed)
    while not stop:
        es = entries()
        if not es: continue
        a = r.choice(es)
        try:
            op = r.randrange(7)
            if op == 0: os.rename(a, a + '.mv')
            elif op == 1 and os.path.isdir(a) and not os.path.islink(a):
                os.rename(a, a + '.old'); open(a, 'w').write('x')
            elif op == 2:
                b = r.choice(es)
                if not (b.startswith(a + '/') or a.startswith(b + '/')) and a != b:
                    os.rename(a, a + '.tmp'); os.rename(b, a); os.rename(a + '.tmp', b)
            elif op == 3 and os.path.isfile(a) and not os.path.islink(a): open(a, 'a').write('more')
            elif op == 4 and os.path.isdir(a) and not os.path.islink(a):
                os.mkdir(os.path.join(a, 'new%d' % r.randrange(1000)))
            elif op == 5 and os.path.isdir(a) and not os.path.islink(a):
                p = os.path.dirname(a); d = r.choice(es)
                if os.path.isdir(d) and not d.startswith(a) and not os.path.islink(d):
                    os.rename(a, os.path.join(d, os.path.basename(a) + '.in'))
            elif op == 6 and not os.path.isdir(a): os.unlink(a)
        except OSError:
            pass
        time.sleep(0.0005)
for i in range(rounds):
    stop = False
    t = threading.Thread(target=churn, daemon=True); t.start()
    for k in range(3):
        r = subprocess.run([E, 'run', root, '--db', db, '--threads', str(1 + k % 3)], capture_output=True, text=True)
        if r.returncode != 0: print('run during churn failed:', r.stderr.strip()); sys.exit(1)
    stop = True; t.join()
    for q in range(2):
        r = subprocess.run([E, 'run', root, '--db', db], capture_output=True, text=True)
        if r.returncode != 0: print('quiet run failed:', r.stderr.strip()); sys.exit(1)
    found = set(os.fsencode(e) for e in entries())
    ls = subprocess.run([E, 'ls', root, '-R', '--json', '--db', db], capture_output=True)
    listed = set()
    for line in ls.stdout.splitlines():
        o = json.loads(line)
        listed.add(base64.b64decode(o['path_b64']) if 'path_b64' in o else o['path'].encode())
    v = subprocess.run([E, 'verify', '--db', db], capture_output=True, text=True)
    print('round', i, 'missing', len(found - listed), 'extra', len(listed - found), 'verify', v.returncode, v.stderr.strip()[:200])
    for p in list(found - listed)[:3]: print('  missing', p)
    for p in list(listed - found)[:3]: print('  extra', p)
    if found != listed or v.returncode != 0: sys.exit(1)
