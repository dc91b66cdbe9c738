package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
)

// udpMagic marks datagrams written by udp-send; the sequence number
// follows it.
var udpMagic = [8]byte{'h', 'o', 'p', 'l', 'a', 'b', 'u', 'd'}

type udpListener struct {
	conns []*net.UDPConn

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every datagram
	c       control.UDPCounters
	nextSeq map[string]uint64
}

type udpTable struct {
	mu     sync.Mutex
	nextID int
	ls     map[int]*udpListener
}

func newUDPTable() *udpTable { return &udpTable{ls: make(map[int]*udpListener)} }

func (t *udpTable) listen(_ context.Context, p control.UDPListen) (control.UDPListener, error) {
	if len(p.Ports) == 0 {
		return control.UDPListener{}, errors.New("no ports")
	}
	l := &udpListener{
		changed: make(chan struct{}),
		c:       control.UDPCounters{PerPort: map[int]int{}, Sources: map[string]int{}},
		nextSeq: map[string]uint64{},
	}
	for _, port := range p.Ports {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.Address), Port: port})
		if err != nil {
			for _, c := range l.conns {
				c.Close()
			}
			return control.UDPListener{}, err // "listen udp ADDR: ..."
		}
		l.conns = append(l.conns, c)
	}
	for i, c := range l.conns {
		go l.serve(c, p.Ports[i])
	}
	t.mu.Lock()
	t.nextID++
	id := t.nextID
	t.ls[id] = l
	t.mu.Unlock()
	return control.UDPListener{ID: id}, nil
}

func (l *udpListener) serve(c *net.UDPConn, port int) {
	buf := make([]byte, 65536)
	for {
		n, src, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		key := src.String()
		l.mu.Lock()
		l.c.Total++
		l.c.PerPort[port]++
		l.c.Sources[key]++
		if n >= 16 && [8]byte(buf[:8]) == udpMagic {
			seq := binary.BigEndian.Uint64(buf[8:16])
			if next, ok := l.nextSeq[key]; ok && seq > next {
				if gap := int(seq - next); gap > l.c.MaxSeqGap {
					l.c.MaxSeqGap = gap
				}
			}
			if seq+1 > l.nextSeq[key] {
				l.nextSeq[key] = seq + 1
			}
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

func (l *udpListener) snapshot() (control.UDPCounters, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.c
	c.PerPort = make(map[int]int, len(l.c.PerPort))
	for k, v := range l.c.PerPort {
		c.PerPort[k] = v
	}
	c.Sources = make(map[string]int, len(l.c.Sources))
	for k, v := range l.c.Sources {
		c.Sources[k] = v
	}
	return c, l.changed
}

func (t *udpTable) stats(ctx context.Context, p control.UDPStats) (control.UDPCounters, error) {
	t.mu.Lock()
	l := t.ls[p.ID]
	if l != nil && p.Stop {
		delete(t.ls, p.ID)
	}
	t.mu.Unlock()
	if l == nil {
		return control.UDPCounters{}, fmt.Errorf("no listener %d", p.ID)
	}
	if p.Stop {
		defer func() {
			for _, c := range l.conns {
				c.Close()
			}
		}()
	}
	var deadline <-chan time.Time
	if p.Timeout > 0 {
		tm := time.NewTimer(p.Timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	for {
		c, changed := l.snapshot()
		if c.Total >= p.WaitTotal || deadline == nil {
			return c, nil
		}
		select {
		case <-changed:
		case <-deadline:
			c, _ = l.snapshot()
			return c, nil
		case <-ctx.Done():
			return c, ctx.Err()
		}
	}
}

func udpSend(ctx context.Context, p control.UDPSend) (control.UDPSent, error) {
	size := max(p.Size, 16)
	var res control.UDPSent
	conns := make([]*net.UDPConn, len(p.Flows))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i, f := range p.Flows {
		host, port, err := net.SplitHostPort(f.Dst)
		if err != nil {
			return res, fmt.Errorf("flow %d: %w", i, err)
		}
		pn, err := strconv.Atoi(port)
		if err != nil {
			return res, fmt.Errorf("flow %d: port %q: %w", i, port, err)
		}
		c, err := net.DialUDP("udp", &net.UDPAddr{Port: f.SrcPort}, &net.UDPAddr{IP: net.ParseIP(host), Port: pn})
		if err != nil {
			return res, fmt.Errorf("flow %d: %w", i, err)
		}
		conns[i] = c
	}
	buf := make([]byte, size)
	copy(buf, udpMagic[:])
	var tick *time.Ticker
	if p.Interval > 0 {
		tick = time.NewTicker(p.Interval)
		defer tick.Stop()
	}
	for seq := 0; seq < p.Count; seq++ {
		binary.BigEndian.PutUint64(buf[8:16], uint64(seq))
		for _, c := range conns {
			if _, err := c.Write(buf); err != nil {
				res.Errors++
				res.LastError = err.Error()
			} else {
				res.Sent++
			}
		}
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	return res, nil
}
