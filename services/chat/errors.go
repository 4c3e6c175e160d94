package chat

import "errors"

// Errors the core returns; doors map them to protocol errors. They are
// wrapped with context, so test with errors.Is.
var (
	ErrBadName          = errors.New("invalid name")
	ErrBadPassword      = errors.New("wrong name or password")
	ErrWeakPassword     = errors.New("password not acceptable")
	ErrTooManyAttempts  = errors.New("too many failed logins from this address; wait a minute")
	ErrRateLimited      = errors.New("sending too fast; slow down")
	ErrTooLong          = errors.New("message too long")
	ErrEmptyMessage     = errors.New("empty message")
	ErrInvalidUTF8      = errors.New("text is not valid UTF-8")
	ErrTooManySessions  = errors.New("too many sessions for this account")
	ErrNoSuchRoom       = errors.New("no such room")
	ErrNotInRoom        = errors.New("not in that room")
	ErrNickInUse        = errors.New("nickname in use in that room")
	ErrNickReserved     = errors.New("nickname belongs to another account")
	ErrBanned           = errors.New("banned from that room")
	ErrInviteOnly       = errors.New("that room is members-only; ask for an invitation")
	ErrRoomKey          = errors.New("wrong room password")
	ErrRoomFull         = errors.New("room is full")
	ErrTooManyRooms     = errors.New("in too many rooms; leave one first")
	ErrForbidden        = errors.New("not allowed")
	ErrModerated        = errors.New("the room is moderated and you have no voice")
	ErrNoSuchOccupant   = errors.New("no such nickname in that room")
	ErrSessionClosed    = errors.New("session closed")
	ErrRoomCreateDenied = errors.New("creating rooms is turned off on this box")
)
