#!/bin/sh
# Rebuilds the committed test objects from the C files next to this script.
# Run by `go generate ./datapath/compat` (and so by `make generate`).
# Every object breaks one 4.19 rule except clean.o; jmp32.c is built for
# -mcpu=v3, the others for v2 (v2's JLT/JLE/JSLT/JSLE are 4.14).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang}
STRIP=${STRIP:-llvm-strip}
for src in *.c; do
	obj=${src%.c}.o
	cpu=v2
	[ "$src" = jmp32.c ] && cpu=v3
	"$CLANG" -target bpf -mcpu="$cpu" -O2 -g -Wall -Werror \
		-fdebug-compilation-dir=. -c "$src" -o "$obj"
	# Keep BTF (map definitions need it), drop DWARF so objects are small
	# and do not depend on where the repository is checked out.
	"$STRIP" -g "$obj"
done
