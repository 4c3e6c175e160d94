package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Service is one part of the box the supervisor runs: a door, mDNS, the
// web admin. Serve runs until ctx is done, calling ready once it is
// serving (listening); it returns nil after ctx is done, or an error if it
// failed. The supervisor restarts a failed service with back-off.
type Service interface {
	Name() string
	Serve(ctx context.Context, ready func()) error
}

// supervisor starts services in order, each once the previous is ready,
// restarts those that fail, and stops them in reverse order.
type supervisor struct {
	log          *slog.Logger
	hub          *hub
	startTimeout time.Duration
	minBackoff   time.Duration
	maxBackoff   time.Duration
	// pairingOpen says whether the pairing window is open (the state a
	// recovery returns to); nil: never.
	pairingOpen func() bool

	mu      sync.Mutex
	failing map[string]bool
	running []*running
}

type running struct {
	svc    Service
	cancel context.CancelFunc
	done   chan struct{}
}

func newSupervisor(log *slog.Logger, h *hub) *supervisor {
	return &supervisor{log: log, hub: h, startTimeout: 30 * time.Second,
		minBackoff: time.Second, maxBackoff: time.Minute, failing: map[string]bool{}}
}

// start launches each service in order and waits for it to be ready. A
// service that fails before ready is an error: the box cannot boot as
// configured (a listener's port in use, say).
func (sv *supervisor) start(ctx context.Context, services []Service) error {
	for _, svc := range services {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &running{svc: svc, cancel: cancel, done: make(chan struct{})}
		readyCh := make(chan struct{})
		firstErr := make(chan error, 1)
		go sv.keep(runCtx, r, readyCh, firstErr)
		select {
		case <-readyCh:
		case err := <-firstErr:
			cancel()
			<-r.done
			return fmt.Errorf("start %s: %w", svc.Name(), err)
		case <-time.After(sv.startTimeout):
			cancel()
			<-r.done
			return fmt.Errorf("start %s: not ready after %s", svc.Name(), sv.startTimeout)
		case <-ctx.Done():
			cancel()
			<-r.done
			return ctx.Err()
		}
		sv.mu.Lock()
		sv.running = append(sv.running, r)
		sv.mu.Unlock()
		sv.log.Info("service ready", "service", svc.Name())
		sv.hub.publish(Event{Kind: "service.ready", Detail: svc.Name()})
	}
	return nil
}

// keep runs one service until its context ends, restarting it with
// exponential back-off when it fails after having been ready once.
func (sv *supervisor) keep(ctx context.Context, r *running, readyCh chan struct{}, firstErr chan error) {
	defer close(r.done)
	var readyOnce sync.Once
	everReady := false
	backoff := sv.minBackoff
	for {
		started := time.Now()
		err := r.svc.Serve(ctx, func() {
			readyOnce.Do(func() { close(readyCh) })
			sv.setFailing(r.svc.Name(), false)
		})
		select {
		case <-readyCh:
			everReady = true
		default:
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped on its own")
		}
		if !everReady {
			firstErr <- err
			return
		}
		sv.log.Error("service failed; restarting", "service", r.svc.Name(), "err", err, "in", backoff)
		sv.hub.publish(Event{Kind: "service.failed", Detail: r.svc.Name() + ": " + err.Error()})
		sv.setFailing(r.svc.Name(), true)
		if time.Since(started) > 2*sv.maxBackoff {
			backoff = sv.minBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, sv.maxBackoff)
	}
}

func (sv *supervisor) setFailing(name string, failing bool) {
	sv.mu.Lock()
	if failing {
		sv.failing[name] = true
	} else {
		delete(sv.failing, name)
	}
	n := len(sv.failing)
	sv.mu.Unlock()
	switch st := sv.hub.State(); {
	case n > 0 && (st == StateReady || st == StatePairing):
		sv.hub.setState(StateDegraded, name)
	case n == 0 && st == StateDegraded:
		// Back to what the box shows when nothing fails: the pairing
		// window, if it is still open, or ready.
		if sv.pairingOpen != nil && sv.pairingOpen() {
			sv.hub.setState(StatePairing, name)
		} else {
			sv.hub.setState(StateReady, name)
		}
	}
}

// stop ends the services in reverse order, waiting for each until ctx's
// deadline.
func (sv *supervisor) stop(ctx context.Context) error {
	sv.mu.Lock()
	rs := sv.running
	sv.running = nil
	sv.mu.Unlock()
	var errs []error
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		r.cancel()
		select {
		case <-r.done:
			sv.log.Info("service stopped", "service", r.svc.Name())
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop in time", r.svc.Name()))
		}
	}
	return errors.Join(errs...)
}
