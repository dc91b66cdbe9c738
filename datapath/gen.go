package datapath

// The BPF objects are built with clang for little-endian BPF at -mcpu=v1
// (no JMP32/ALU32, which 4.19 lacks). The generated *_bpfel.go and
// *_bpfel.o are committed; `make generate` rebuilds them.

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v1" -target bpfel -go-package datapath -type ct_key -type ct_entry -type lb4_key -type lb4_service -type lb4_backend -type lb4_reverse_nat -type ipcache_key -type remote_endpoint_info -type endpoint_key -type endpoint_info -type endpoint_by_ifindex -type policy_key -type policy_entry -type metrics_value -type nat_entry lxc bpf/bpf_lxc.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v1" -target bpfel -go-package datapath -no-global-types netdev bpf/bpf_netdev.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v1" -target bpfel -go-package datapath -no-global-types overlay bpf/bpf_overlay.c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v1" -target bpfel -go-package datapath -no-global-types -type sock4_xlate -type sock4_reverse_key -type sock4_reverse sock bpf/bpf_sock.c
//go:generate go run ./internal/hdrgen/cmd/hdrgen -pkg datapath -o reasons_gen.go bpf/lib/drop.h bpf/lib/trace.h bpf/lib/common.h
