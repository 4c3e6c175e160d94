package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// makeAccounts creates the accounts a run with o.clients clients logs in
// with, and the room, in chatbox data directory o.makeAccounts, with the
// chatbox binary o.chatbox ("user add", "room add"); what exists is left
// as it is. It works whether or not the server runs.
func makeAccounts(ctx context.Context, o *options, stdout io.Writer) error {
	chatbox := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, o.chatbox, append([]string{"--data", o.makeAccounts}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		if err := cmd.Run(); err != nil {
			if ctx.Err() != nil {
				return "", context.Cause(ctx)
			}
			return "", fmt.Errorf("chatbox %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		}
		return out.String(), nil
	}
	list := func(args ...string) (map[string]bool, error) {
		out, err := chatbox("", args...)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				have[strings.TrimPrefix(f[0], "#")] = true
			}
		}
		return have, nil
	}

	rooms, err := list("room", "list")
	if err != nil {
		return err
	}
	if !rooms[o.room] {
		if _, err := chatbox("", "room", "add", o.room); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "room %s created\n", o.room)
	}
	have, err := list("user", "list")
	if err != nil {
		return err
	}
	var todo []int
	for i := range o.clients {
		if name, _ := o.account(i); !have[name] {
			todo = append(todo, i)
		}
	}
	// A few at a time: each is a process that opens the database.
	work := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range min(4, len(todo)) {
		wg.Go(func() {
			for i := range work {
				name, pw := o.account(i)
				if _, err := chatbox(pw+"\n", "user", "add", name); err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, i := range todo {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	name0, _ := o.account(0)
	nameN, pwN := o.account(o.clients - 1)
	fmt.Fprintf(stdout, "accounts %s … %s: %d created, %d already there (password of %s: %s)\n",
		name0, nameN, len(todo), o.clients-len(todo), nameN, pwN)
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
