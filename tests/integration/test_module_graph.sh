# No module calls up into a module that calls it, and no folder includes a
# folder that includes it (tests/tools/modgraph.sh; the modules are the
# MODULES of every module.mk, written to build/modules.txt by make).
# First the checker proves it sees a cycle: two modules made here that call
# each other must fail it, naming the cycle.
. tests/integration/lib.sh

cc=${CC:-cc}
printf 'int up(void);\nint down(void) { return up(); }\n' >"$TMP/a.c"
printf 'int down(void);\nint up(void) { return 1; }\nint side(void) { return down(); }\n' >"$TMP/b.c"
$cc -c -o "$TMP/a.o" "$TMP/a.c" && $cc -c -o "$TMP/b.o" "$TMP/b.c" ||
	fail "cannot compile the cycle's objects"
printf 'alpha %s\nbeta %s\n' "$TMP/a.o" "$TMP/b.o" >"$TMP/cycle.txt"
st=0
sh tests/tools/modgraph.sh "$TMP/cycle.txt" >"$TMP/cycle.out" 2>&1 || st=$?
sed 's/^/  planted: /' "$TMP/cycle.out"
[ $st -eq 1 ] || fail "the checker passed two modules that call each other (status $st)"
grep -Eq "^module cycle: (alpha -> beta -> alpha|beta -> alpha -> beta)$" "$TMP/cycle.out" ||
	fail "the checker did not name the planted cycle"

# The project's own graph.
sh tests/tools/modgraph.sh "$BUILD/modules.txt"
