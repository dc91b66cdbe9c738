package roles

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hoplab/hoplab/vmtest/agent/pods"
)

// packetSocket is an AF_PACKET socket bound to one device of a pod's
// namespace. It is non-blocking under Go's poller, so Close interrupts a
// pending read.
type packetSocket struct {
	f       *os.File
	ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openPacketSocket opens an AF_PACKET socket in p's namespace bound to its
// eth0, receiving every protocol when recv is set and nothing otherwise
// (for sending; such a socket marks its packets with injectMark).
func openPacketSocket(p *pods.Pod, recv bool) (*packetSocket, error) {
	var fd int
	proto := uint16(0)
	if recv {
		proto = htons(unix.ETH_P_ALL)
	}
	err := p.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if !recv {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, injectMark); err != nil {
				unix.Close(fd)
				return fmt.Errorf("mark packet socket: %w", err)
			}
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: p.PodIndex}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind packet socket to eth0: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &packetSocket{f: os.NewFile(uintptr(fd), "packet:"+p.Name), ifindex: p.PodIndex}, nil
}

// read returns the next frame and whether the pod's eth0 sent it.
func (s *packetSocket) read(buf []byte) (n int, outgoing bool, err error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, false, err
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		var from unix.Sockaddr
		n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
		if errors.Is(rerr, unix.EAGAIN) {
			return false
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		return true
	})
	if err != nil {
		return 0, false, err
	}
	return n, outgoing, rerr
}

// Backoff of a send the kernel refused with ENOBUFS.
const (
	// sendBackoffMin is the first pause before sending again.
	sendBackoffMin = 100 * time.Microsecond
	// sendBackoffMax caps the pause, which doubles at each refusal.
	sendBackoffMax = 20 * time.Millisecond
	// sendRetryFor is how long a frame may keep being refused before the
	// send fails.
	sendRetryFor = 10 * time.Second
)

// write sends one complete Ethernet frame out of the bound device. ENOBUFS
// (the device, or the veth peer's backlog, dropped it: many frames sent
// back to back while the datapath is busy) is retried with backoff for up
// to sendRetryFor; the frame went nowhere, so it is sent again.
func (s *packetSocket) write(frame []byte) error {
	return retryNoBufs(func() error { return s.send(frame) }, time.Sleep, sendRetryFor)
}

// retryNoBufs calls send until it does not fail with ENOBUFS, pausing
// between attempts (sendBackoffMin, doubling up to sendBackoffMax) with
// sleep, for up to limit in all; then the ENOBUFS error is returned,
// saying for how long it was retried.
func retryNoBufs(send func() error, sleep func(time.Duration), limit time.Duration) error {
	pause, waited := sendBackoffMin, time.Duration(0)
	for {
		err := send()
		if !errors.Is(err, unix.ENOBUFS) {
			return err
		}
		if waited >= limit {
			return fmt.Errorf("%w (retried for %v)", err, waited.Round(time.Millisecond))
		}
		sleep(pause)
		waited += pause
		pause = min(2*pause, sendBackoffMax)
	}
}

// send writes frame once, waiting while the socket would block.
func (s *packetSocket) send(frame []byte) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex})
		return !errors.Is(werr, unix.EAGAIN)
	})
	if err != nil {
		return err
	}
	return werr
}

func (s *packetSocket) close() error { return s.f.Close() }
