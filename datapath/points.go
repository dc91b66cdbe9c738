package datapath

// JourneyPoint returns the name of the observation point in the journey
// report vocabulary of DESIGN.md ("from-container", "to-stack",
// "to-netdev", "from-netdev", "to-container", ...), or "" for points the
// journey does not name.
func (p ObsPoint) JourneyPoint() string {
	switch p {
	case TraceFromLXC:
		return "from-container"
	case TraceToLXC:
		return "to-container"
	case TraceToStack:
		return "to-stack"
	case TraceFromNetwork:
		return "from-netdev"
	case TraceToNetwork:
		return "to-netdev"
	case TraceToOverlay:
		return "to-overlay"
	case TraceFromOverlay:
		return "from-overlay"
	case TraceToProxy:
		return "proxy"
	}
	return ""
}
