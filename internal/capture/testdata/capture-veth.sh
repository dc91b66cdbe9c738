#!/bin/bash
# capture-veth.sh: how tcpdump-any-veth-*.pcap were captured (root; tcpdump 4.99.3,
# libpcap 1.10.3). Two throw-away netns joined by a veth pair; tcpdump -i any in
# the first records ARP, UDP to a closed port (ICMP unreachable back) and a TCP
# SYN to a closed port (RST back), once as LINUX_SLL and once as LINUX_SLL2 with
# a 70-byte snaplen (which cuts the SYN inside its TCP options).
# Committed as tcpdump-any-veth-sll.pcap and tcpdump-any-veth-sll2-snap70.pcap.
set -e
A=hlcapA$$; B=hlcapB$$
ip netns add $A; ip netns add $B
trap "ip netns del $A; ip netns del $B" EXIT
ip link add hlva type veth peer name hlvb
ip link set hlva netns $A; ip link set hlvb netns $B
ip -n $A addr add 10.99.0.1/24 dev hlva; ip -n $B addr add 10.99.0.2/24 dev hlvb
ip -n $A link set hlva up; ip -n $B link set hlvb up; ip -n $A link set lo up; ip -n $B link set lo up
for spec in LINUX_SLL:262144 LINUX_SLL2:70; do
  y=${spec%%:*}; s=${spec##*:}
  ip netns exec $A tcpdump -i any -y $y -s $s -U -w "${OUT:-.}/tcpdump-any-$y.pcap" -c 10 'icmp or tcp or arp or udp' 2>/tmp/td-$y.log &
  TD=$!
  sleep 1.5
  ip netns exec $A bash -c 'echo hoplab > /dev/udp/10.99.0.2/5353'; sleep 0.2
  ip netns exec $A timeout 1 bash -c 'exec 3<>/dev/tcp/10.99.0.2/8080' 2>/dev/null || true
  ip netns exec $A bash -c 'echo hoplab > /dev/udp/10.99.0.2/5353'; sleep 0.2
  sleep 0.5; kill $TD 2>/dev/null || true; wait $TD || true
done
