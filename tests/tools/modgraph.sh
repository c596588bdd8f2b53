#!/bin/sh
# The module graph, and a check that it has no cycle.
#
#   sh tests/tools/modgraph.sh MODULES [--dot]
#
# MODULES (written by make: build/modules.txt) holds one line per module:
# its name, then its object files. A module is the code behind one public
# header (docs/design.md lists them); every module.mk names its own.
#
# Two graphs are checked:
#   - modules: A -> B when an object of A uses a symbol that an object of
#     B defines (nm). A cycle means two modules call each other: one of
#     them should answer through an interface (a table of function
#     pointers, a result) instead of calling up.
#   - folders: A -> B when a file in folder A includes "B/...". A cycle
#     between folders is an include cycle.
# Objects of no module (generated tables, protobuf code) count as leaves.
# Prints both graphs' edges and every cycle; exits 1 if there is one.
set -u
mods=$1
dot=${2:-}
[ -r "$mods" ] || { echo "modgraph: cannot read $mods (make builds it)" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/modgraph.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- symbols: "D module symbol" (defined), "U module symbol" (used) ------
while read -r mod objs; do
	for o in $objs; do
		[ -r "$o" ] || { echo "modgraph: module $mod: no object $o" >&2; exit 2; }
		nm -g --defined-only "$o" | awk -v m="$mod" 'NF >= 3 { print "D", m, $3 }'
		nm -u "$o" | awk -v m="$mod" '{ print "U", m, $NF }'
	done
done <"$mods" >"$tmp/syms"

# Edges between modules, each once.
awk '$1 == "D" { def[$3] = $2 }
     $1 == "U" { use[NR] = $2 " " $3 }
     END {
	for (i in use) {
		split(use[i], a, " ")
		if ((a[2] in def) && def[a[2]] != a[1])
			print a[1], def[a[2]]
	}
     }' "$tmp/syms" | sort -u >"$tmp/mod-edges"

# ---- folders: who includes whom ---------------------------------------------
for f in $(find ipc kdriver emt-worker device-procs broker policy proto bench \
	   tests -name '*.[ch]' 2>/dev/null); do
	from=${f%%/*}
	sed -n 's/^#include "\([a-z-]*\)\/.*"$/\1/p' "$f" |
		awk -v a="$from" '$1 != a { print a, $1 }'
done | sort -u >"$tmp/dir-edges"

# ---- cycles: a depth-first search over each graph -------------------------------
cycles() {  # EDGES TITLE
	awk -v title="$2" '
	{ n[$1]++; adj[$1, n[$1]] = $2; node[$1] = 1; node[$2] = 1 }
	function dfs(v,    i, w, k, c) {
		state[v] = 1; stack[++sp] = v
		for (i = 1; i <= n[v]; i++) {
			w = adj[v, i]
			if (state[w] == 1) {
				c = w
				for (k = sp; k >= 1 && stack[k] != w; k--)
					c = stack[k] " -> " c
				c = w " -> " c
				if (!(c in seen)) {
					seen[c] = 1
					printf "%s cycle: %s\n", title, c
					found++
				}
			} else if (state[w] == 0) {
				dfs(w)
			}
		}
		sp--; state[v] = 2
	}
	END {
		for (v in node) if (state[v] == 0) dfs(v)
		exit found > 0
	}' "$1"
}

if [ "$dot" = --dot ]; then
	echo "digraph modules {"
	sed 's/^\(.*\) \(.*\)$/  "\1" -> "\2";/' "$tmp/mod-edges"
	echo "}"
	exit 0
fi
echo "modules ($(wc -l <"$mods") of them), A -> B: A uses what B defines"
sed 's/^/  /' "$tmp/mod-edges"
echo "folders, A -> B: a file in A includes one of B"
sed 's/^/  /' "$tmp/dir-edges"
st=0
cycles "$tmp/mod-edges" module || st=1
cycles "$tmp/dir-edges" folder || st=1
if [ $st -eq 0 ]; then
	echo "no cycle between modules or folders"
fi
exit $st
