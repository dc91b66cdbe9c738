package workload

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"
)

// HTTPStream holds one TCP connection from the pod to dst and sends HTTP
// GET requests over it, one after the other, for d: the long-lived
// connection fault tests keep running while links flap, maps change or
// the CT table fills. Each request must be answered within each. The
// outcome is OK only if every request was answered on the one connection;
// Requests counts the answered ones and MaxWait is the longest wait for an
// answer (the stall a fault caused).
func HTTPStream(ctx context.Context, ns NetNS, dst netip.AddrPort, d, each time.Duration) Outcome {
	return HTTPStreamPath(ctx, ns, dst, "/", d, each)
}

// HTTPStreamPath is HTTPStream requesting path.
func HTTPStreamPath(ctx context.Context, ns NetNS, dst netip.AddrPort, path string, d, each time.Duration) Outcome {
	start := time.Now()
	c, err := dial(ctx, ns, "tcp4", dst)
	if err != nil {
		return fail(start, err)
	}
	defer c.Close()
	out := Outcome{Local: c.LocalAddr().String()}
	r := bufio.NewReader(c)
	for end := start.Add(d); time.Now().Before(end); {
		sent := time.Now()
		_ = c.SetDeadline(sent.Add(each))
		body, err := streamGet(c, r, dst, path)
		wait := time.Since(sent)
		out.MaxWait = max(out.MaxWait, wait)
		if err != nil {
			out.Error = fmt.Sprintf("request %d after %v: %v", out.Requests+1, sent.Sub(start).Round(time.Millisecond), err)
			out.RTT = time.Since(start)
			return out
		}
		out.Requests++
		out.Reply = body
		if ctx.Err() != nil {
			break
		}
	}
	out.OK, out.RTT = true, time.Since(start)
	return out
}

// streamGet sends one keep-alive GET on c and reads its answer from r.
func streamGet(c io.Writer, r *bufio.Reader, dst netip.AddrPort, path string) (string, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, dst); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s", resp.Status)
	}
	if resp.Close {
		return string(body), fmt.Errorf("the server closed the connection")
	}
	return string(body), nil
}
