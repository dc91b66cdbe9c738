// Package replayreport writes what `hoplab replay` shows of a journey
// report (package internal/journey): the text journeys with the drop's
// identities, one pcapng per hop for Wireshark, and a self-contained HTML
// page with a picture of each packet's path.
//
// # Text
//
// WriteText renders the report with journey.Render (one block per hop, '*'
// on fields that changed since the previous hop) and adds, under every
// dropped packet, a line naming the drop's reason, hop and the security
// identities of source and destination as the dropping node's ipcache
// resolves them (Cilium's numbering, label sets in brackets).
//
// # Per-hop captures
//
// WritePcaps writes one pcapng file per hop of the journeys — a hop being a
// (node, point, device) triple, such as node2's from-netdev on bond0 —
// holding every replayed packet as that hop saw it, in journey order, so a
// file opened in Wireshark is the capture one would have taken there. Frames
// come from the observations of the replay (Sighting); a hop no observation
// carried a frame for (a journey read back from JSON, say) gets a frame
// rebuilt from the injected packet with the hop's header fields applied and
// the checksums fixed. Files are named NN-node-point-device.pcapng in path
// order.
//
// # HTML
//
// WriteHTML writes one page with no external assets (inline CSS and SVG):
// per packet, the path as a figure — every node and the router as a box,
// each hop inside it as a device with its hook, arrows along the hops, the
// dropping hop in red — and a table of every hop's headers with the fields
// that changed highlighted.
//
// # Two kernels
//
// ComparePackets aligns one packet's journeys on two kernels hop by hop
// (same node, point and device, in path order) and compares them field by
// field, both sides alike, the outer UDP source port (a per-boot hash)
// aside; CompareReports does so for every packet. WriteSideBySide prints a
// line per packet that is alike and both journeys side by side for one
// that differs, the first differing hop marked '>' and every differing
// value '!'. WriteKernelsHTML draws the two paths side by side with the
// figure of WriteHTML, the first differing hop filled and the other
// differing hops outlined, over hop tables aligned row by row.
package replayreport
