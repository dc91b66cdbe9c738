package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/hoplab/hoplab/topologies"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

// maxDrain is the most body bytes of a denied request read (and thrown
// away) to keep its connection usable; a longer body closes it.
const maxDrain = 1 << 20

// ruleNoPolicy is the rule of a request on a flow no policy explains any
// more (its L7 rules were removed after the flow was redirected): it is
// forwarded, as the flow was admitted.
const ruleNoPolicy = "no L7 rules apply to the flow any more: forwarded"

// upstream is the proxy's connection to a client connection's original
// destination, opened on its first allowed request.
type upstream struct {
	c       net.Conn
	r       *bufio.Reader
	untrack func()
}

func (u *upstream) close() {
	if u != nil {
		_ = u.c.Close()
		u.untrack()
	}
}

// handle serves one client connection: each request is decided by the
// current policy, answered with 403 when denied, else forwarded over the
// connection's upstream and its response relayed.
func (p *Proxy) handle(port uint16, c net.Conn) {
	defer c.Close()
	client, dst := addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
	r := bufio.NewReader(c)
	var up *upstream
	defer func() { up.close() }()
	for {
		_ = c.SetReadDeadline(time.Now().Add(p.opts.IdleTimeout))
		req, err := http.ReadRequest(r)
		if err != nil {
			if !quiet(err) {
				pol := p.policy.Load()
				fp, _ := pol.forFlow(client, dst)
				rec := p.record(pol, fp, port, client, dst, nil)
				p.fail(c, rec, http.StatusBadRequest, fmt.Sprintf("bad request: %v", err), time.Now())
			}
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		keep, next := p.serveRequest(port, c, client, dst, req, up)
		up = next
		if !keep {
			return
		}
	}
}

// serveRequest decides and answers one request; keep is false when the
// client connection must close. It returns the upstream to use next.
func (p *Proxy) serveRequest(port uint16, c net.Conn, client, dst netip.AddrPort, req *http.Request, up *upstream) (keep bool, next *upstream) {
	start := time.Now()
	pol := p.policy.Load()
	fp, ok := pol.forFlow(client, dst)
	rec := p.record(pol, fp, port, client, dst, req)
	switch {
	case ok:
		d := fp.port.Decide(fp.remote, topologies.HTTPRequest{Method: req.Method, Path: req.RequestURI, Host: req.Host, Header: req.Header})
		rec.Rule = d.Rule
		if !d.Allowed {
			return p.deny(c, rec, req, start), up
		}
	case pol == nil || pol.Local[dst.Addr()]:
		// Nothing sends such a flow here; forwarding it would loop.
		p.fail(c, rec, http.StatusBadGateway, "no L7 policy for this flow", start)
		return false, up
	default:
		rec.Rule = ruleNoPolicy
	}
	rec.Type, rec.Verdict = nodeapi.L7Request, nodeapi.L7Forwarded
	p.emit(rec, start)
	if up == nil {
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.DialTimeout)
		uc, err := p.opts.Dial(ctx, dst)
		cancel()
		if err != nil {
			p.fail(c, rec, http.StatusBadGateway, fmt.Sprintf("upstream: %v", err), start)
			return false, nil
		}
		if !p.track(uc, true) { // Close closes it with the client's
			_ = uc.Close()
			return false, nil
		}
		up = &upstream{c: uc, r: bufio.NewReader(uc), untrack: func() { p.track(uc, false) }}
	}
	_ = up.c.SetDeadline(time.Now().Add(p.opts.IdleTimeout))
	if _, has := req.Header["User-Agent"]; !has {
		req.Header["User-Agent"] = []string{""} // Write adds none then
	}
	if err := req.Write(up.c); err != nil {
		p.fail(c, rec, http.StatusBadGateway, fmt.Sprintf("upstream: %v", err), start)
		return false, up
	}
	resp, err := http.ReadResponse(up.r, req)
	if err != nil {
		p.fail(c, rec, http.StatusBadGateway, fmt.Sprintf("upstream: %v", err), start)
		return false, up
	}
	latency := time.Since(start)
	werr := resp.Write(c)
	resp.Body.Close()
	rec.Type, rec.Status, rec.Latency = nodeapi.L7Response, resp.StatusCode, latency
	p.emit(rec, time.Now())
	if werr != nil || req.Close || resp.Close {
		return false, up
	}
	return true, up
}

// deny answers a denied request with 403 "Access denied" and records it.
func (p *Proxy) deny(c net.Conn, rec nodeapi.L7Event, req *http.Request, start time.Time) (keep bool) {
	rec.Type, rec.Verdict, rec.Reason = nodeapi.L7Request, nodeapi.L7Dropped, topologies.DropPolicyDenied
	p.emit(rec, start)
	n, _ := io.Copy(io.Discard, io.LimitReader(req.Body, maxDrain+1))
	closeAfter := req.Close || n > maxDrain
	err := writeStatus(c, http.StatusForbidden, topologies.AccessDenied, closeAfter)
	rec.Type, rec.Status, rec.Latency = nodeapi.L7Response, http.StatusForbidden, time.Since(start)
	p.emit(rec, time.Now())
	return err == nil && !closeAfter
}

// fail answers with status (400, 502), records an L7Error response with
// why, and leaves the connection to be closed.
func (p *Proxy) fail(c net.Conn, rec nodeapi.L7Event, status int, why string, start time.Time) {
	_ = writeStatus(c, status, http.StatusText(status), true)
	rec.Type, rec.Verdict, rec.Reason, rec.Status, rec.Latency = nodeapi.L7Response, nodeapi.L7Error, why, status, time.Since(start)
	p.emit(rec, time.Now())
	p.log.Debug("request failed", "src", rec.Src, "dst", rec.Dst, "status", status, "why", why)
}

// writeStatus writes a plain-text answer of the proxy's own.
func writeStatus(w io.Writer, status int, body string, closing bool) error {
	body += "\r\n"
	conn := ""
	if closing {
		conn = "Connection: close\r\n"
	}
	_, err := fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s",
		status, http.StatusText(status), len(body), conn, body)
	return err
}

// record is the record of a request on the flow client → dst, without
// its type, verdict and outcome.
func (p *Proxy) record(pol *Policy, fp flowPolicy, port uint16, client, dst netip.AddrPort, req *http.Request) nodeapi.L7Event {
	rec := nodeapi.L7Event{Node: p.opts.Node, ProxyPort: port, Src: client, Dst: dst, Protocol: "HTTP/1.1"}
	if pol != nil {
		s, d := pol.Peer(client.Addr()), pol.Peer(dst.Addr())
		rec.SrcName, rec.SrcIdentity, rec.DstName, rec.DstIdentity = s.Name, uint32(s.Identity), d.Name, uint32(d.Identity)
	}
	if fp.endpoint != nil {
		rec.Direction, rec.Endpoint = fp.direction.String(), fp.endpoint.Name
	}
	if req != nil {
		rec.Protocol = req.Proto
		rec.Method, rec.Host, rec.Path = req.Method, req.Host, req.RequestURI
		host := req.Host
		if host == "" {
			host = dst.String()
		}
		rec.URL = "http://" + host + req.RequestURI
	}
	return rec
}

// emit stamps and sends a record; a response counts in the metrics.
func (p *Proxy) emit(rec nodeapi.L7Event, t time.Time) {
	rec.Time = t
	if rec.Type == nodeapi.L7Response {
		p.metrics.count(rec.Direction, rec.Verdict, rec.Status)
	}
	p.opts.Emit(rec)
}

// quiet reports whether a failed read of a request is the connection's
// normal end (closed, idle) rather than a bad request.
func quiet(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
