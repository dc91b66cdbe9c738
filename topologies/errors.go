package topologies

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (with errors.Is) by every error that rejects a
// topology's content, as opposed to failing to read it.
var ErrInvalid = errors.New("invalid topology")

// ErrUnknownPod is matched by errors for pod names the topology lacks.
var ErrUnknownPod = errors.New("unknown pod")

// Error is one problem found in a topology file, located by line and column.
type Error struct {
	// File is the topology's file name.
	File string
	// Line and Col locate the offending YAML node (1-based; 0 if unknown).
	Line, Col int
	// Msg is the reason.
	Msg string
}

// Error formats the problem as "file:line:col: msg".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }
