package chat

// FanRoomRun routes the stored messages msgs, sent by senders (one each),
// to room as one run, as the fan-out goroutine does a run of a group
// commit (for the tests of package chat_test).
func (c *Core) FanRoomRun(room string, senders []*Session, msgs []*Message) {
	c.mu.Lock()
	r := c.rooms[Fold(room)]
	c.mu.Unlock()
	run := make([]fanoutJob, len(msgs))
	for i := range msgs {
		run[i] = fanoutJob{r: r, s: senders[i], m: msgs[i]}
	}
	c.fanRoomRun(r, run, nil)
}
