"""The eBPF datapath: C programs in bpf/, loaded through libbpf; Python decides, BPF looks up."""
