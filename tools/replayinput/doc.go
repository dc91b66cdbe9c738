// Package replayinput decides which packets of a user's capture `hoplab
// replay` injects, and refuses the others with one line naming the packet.
//
// The capture is read with package internal/capture, which already converts
// Linux cooked (SLL, SLL2), raw-IP and loopback captures to Ethernet, strips
// VLAN tags and pairs repeated sightings of one packet. On top of that,
// Select applies the replay rules, packet by packet:
//
//	input                                   outcome
//	unsupported link type, bad magic,       whole-file error (from capture)
//	  truncated record, malformed record
//	Linux cooked / raw IP capture           replayed; MACs rewritten at injection
//	VLAN-tagged frame                       replayed without its tags
//	repeated sighting (tcpdump -i any)      skipped: the first sighting is replayed
//	IPv4 fragment                           replayed as captured
//	snaplen-cut packet                      refused (ErrSnaplenCut)
//	IP or L4 header cut or malformed        refused (capture's ErrHeadersCut, ErrBadHeader)
//	IPv6                                    refused (ErrIPv6): the datapath is IPv4-only
//	ARP and other non-IP frames             refused (ErrNonIP)
//	--keep-l2 on made-up Ethernet headers   refused (ErrKeepL2)
//
// A refusal is an error naming the file, the packet index (0-based, as in the
// journey report) and Wireshark's frame number. With Options.SkipRefused the
// refused packets are skipped instead and listed in Selection.Skipped, so a
// capture with IPv6 or ARP noise can still be replayed for its IPv4 packets.
package replayinput
