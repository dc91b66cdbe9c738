// Package capture reads users' packet captures for `hoplab replay` and the
// fixtures, and hands back Ethernet frames ready for injection.
//
// Both classic pcap (micro- and nanosecond, either byte order, optionally
// gzip-compressed) and pcapng are read; the format is detected by the file's
// magic number and the records are decoded with gopacket's pcapgo readers.
// Every packet comes back as an Ethernet frame with its index (0-based, the
// same index as in the journey report; Wireshark's frame number is index+1),
// timestamp and original length.
//
// What the reader does with awkward input, packet by packet:
//
//   - Linux cooked captures (`tcpdump -i any`: LINKTYPE_LINUX_SLL 113 and
//     LINKTYPE_LINUX_SLL2 276) are converted to Ethernet: the SLL header's
//     link-layer address becomes the source MAC when it is 6 bytes long, the
//     destination MAC is the placeholder 00:00:00:00:00:00, and the packet is
//     flagged [L2Synthesized] so the injector rewrites both MACs.
//   - Raw IP captures (LINKTYPE_RAW 101, LINKTYPE_IPV4 228, LINKTYPE_IPV6 229)
//     and BSD loopback captures (LINKTYPE_NULL 0, LINKTYPE_LOOP 108) are
//     wrapped in an Ethernet header with placeholder MACs, flagged the same way.
//   - 802.1Q / 802.1ad tags are stripped (all stacked tags) and the packet is
//     flagged [VLANStripped]; the removed VLAN IDs are kept in Packet.VLANs.
//   - IPv6 is passed through untouched and flagged [IPv6] (the datapath
//     passes IPv6 unmodified); ARP and other non-IP frames are flagged
//     [NonIP] and passed through.
//   - Snaplen-cut packets (captured length < original length) are flagged
//     [Truncated]; if the cut removed part of the IP or L4 header the packet is
//     refused for replay (Packet.Refusal says why) but still returned.
//   - Frames whose IP header is malformed are refused for replay the same way.
//   - A packet `tcpdump -i any` recorded once per interface it crossed (pod
//     veth, then bond0 after DNAT with a lower TTL) is flagged [Duplicate]
//     from its second sighting on, with Packet.DuplicateOf naming the first
//     ([MarkDuplicates]; ReadFile applies it), so replay injects it once.
//
// Whole-file problems end the read with an [*Error] naming the file and, where
// it applies, the packet index: an empty file ([ErrEmpty]), garbage or an
// unknown magic number ([ErrNotCapture]), an unsupported link type
// ([ErrUnsupportedLinkType], naming the type), a file that ends in the middle
// of a record ([ErrTruncatedFile]) and structurally broken records
// ([ErrMalformed]). The reader never panics on bad input (see FuzzRead) and
// never allocates more than [MaxRecordLen] bytes per record whatever the file
// claims.
package capture
