// Package study reproduces the UvA "eBPF Based Networking" study (N. de
// Bruijn, 2017) in hoplab's VMs: TCP bulk throughput (one stream, fixed
// time, as iperf3) and TCP_RR (100-byte requests, 200-byte responses, as
// netperf) between two pods, single-host and multi-host, for the hoplab
// datapath with N policy entries for the destination endpoint, and for a
// baseline of the same pods on a Linux bridge per node with N rules in
// netfilter's FORWARD chain, with no rule matching the traffic or with a
// matching rule at the top.
//
// [Run] boots the study's topology and measures a [Grid]; [Summarize]
// turns the samples into medians, spreads and ratios to each variant's 0
// entries; [WriteSamplesCSV], [WritePointsCSV], [WritePlots] and
// [WriteReport] write the CSV files, one PNG per metric and the Markdown
// report (docs/study.md). The numbers that matter are ratios: under TCG
// the absolute throughput means nothing.
package study
