package datapath

import "errors"

var (
	// ErrNotIPv4 is returned when an address or prefix is not IPv4: the
	// datapath handles IPv4 only.
	ErrNotIPv4 = errors.New("not an IPv4 address")
	// ErrInvalid is returned for values the datapath cannot represent,
	// such as a service without an id or too many backends.
	ErrInvalid = errors.New("invalid value")
	// ErrNotFound is returned when a map has no entry for a key.
	ErrNotFound = errors.New("not found")
)
