package agent

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// memoryShare is the part of the memory available at boot the agent's Go
// heap aims to stay under. The agent is init: the OOM killer cannot kill
// it, so a guest that runs out of memory panics ("System is deadlocked on
// memory") instead. A soft limit makes the collector work harder before
// that (dumping a full 65,536-entry CT table builds tens of MB at once).
const memoryShare = 0.5

// setMemoryLimit sets the Go runtime's soft memory limit to memoryShare of
// MemAvailable in meminfo and returns it.
func setMemoryLimit(meminfo string) (int64, error) {
	avail, err := memAvailable(meminfo)
	if err != nil {
		return 0, err
	}
	limit := int64(float64(avail) * memoryShare)
	debug.SetMemoryLimit(limit)
	return limit, nil
}

// memAvailable reads MemAvailable, in bytes, from a /proc/meminfo file.
func memAvailable(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: MemAvailable %q: %w", path, strings.TrimSpace(v), err)
		}
		return kb << 10, nil
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemAvailable", path)
}
