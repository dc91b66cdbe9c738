package cluster

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hoplab/hoplab/vmtest/protocol/control"
	"github.com/hoplab/hoplab/vmtest/protocol/nodeapi"
)

func TestSubscriberOrderAndBound(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	var mu sync.Mutex
	var got []int
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.fn = func(e Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release // a slow subscriber
		mu.Lock()
		got = append(got, int(e.Datapath.IfIndex))
		mu.Unlock()
	}
	go s.run()
	n := maxQueue + 11
	s.push(Event{Kind: EventDatapath, Datapath: &nodeapi.DatapathEvent{IfIndex: 0}})
	<-entered // the subscriber is busy with event 0
	for i := 1; i < n; i++ {
		s.push(Event{Kind: EventDatapath, Datapath: &nodeapi.DatapathEvent{IfIndex: uint32(i)}})
	}
	close(release)
	s.stop()
	if s.dropped != 10 || len(got) != maxQueue+1 {
		t.Fatalf("delivered %d, dropped %d of %d", len(got), s.dropped, n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d delivered as %d-th", v, i)
		}
	}
	s.push(Event{}) // after stop: ignored, no panic
}

func TestHubAgentEvents(t *testing.T) {
	h := newHub(slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var got []Event
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{}), fn: func(e Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}}
	go s.run()
	h.subs[s] = struct{}{}
	data, _ := control.Marshal(nodeapi.DatapathEvent{Node: "node2", Type: nodeapi.EventDrop, Point: "to-container", Reason: "Policy denied"})
	h.agentEvent(&control.Message{Event: nodeapi.EventDatapath, Data: data})
	data, _ = control.Marshal(nodeapi.PodPacket{Node: "node1", Pod: "pod1", Direction: nodeapi.PodEgress})
	h.agentEvent(&control.Message{Event: nodeapi.EventPodPacket, Data: data})
	h.agentEvent(&control.Message{Event: control.EventLog, Data: data})                 // not an observation
	h.agentEvent(&control.Message{Event: nodeapi.EventDatapath, Data: []byte(`"bad"`)}) // logged, dropped
	deadline := time.Now().Add(time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.close()
	if len(got) != 2 || got[0].Kind != EventDatapath || got[0].Node() != "node2" || got[0].Datapath.Reason != "Policy denied" ||
		got[1].Kind != EventPod || got[1].Node() != "node1" || got[0].Time.IsZero() {
		t.Fatalf("events %+v", got)
	}
}
