package appliance

import (
	"context"
	"path/filepath"

	"chatbox/services/chat"
	"chatbox/services/upload"
	"chatbox/services/xmpp"
)

// uploadService is the file sharing service the settings ask for
// (upload.*), serving <data>/uploads, or nil when upload.listen is empty.
func (b *Box) uploadService() *upload.Service {
	c := b.cfg.Upload
	if len(c.Listen) == 0 {
		return nil
	}
	svc := upload.New(upload.Config{
		Listen:       c.Listen,
		TLS:          b.ServerTLSConfig(),
		Domain:       b.cfg.Domain,
		Dir:          filepath.Join(b.cfg.DataDir, "uploads"),
		MaxFileBytes: c.MaxFileBytes,
		QuotaBytes:   c.QuotaBytes,
		Expire:       c.Expire,
	}, b.log)
	// The event's end removes what guests shared (event mode, issue 11).
	b.core.OnEventEnd(func(context.Context) error {
		b.log.Info("event ended: guests' shared files deleted", "files", svc.DeleteFilesFromPrefix(chat.GuestPrefix))
		return nil
	})
	return svc
}

// xmppUploads hands the upload service's slots to the XMPP door
// (XEP-0363); the service's errors satisfy the door's error interfaces.
type xmppUploads struct{ s *upload.Service }

// uploader is what the XMPP door gets for s: nil (no XEP-0363) when file
// sharing is off.
func uploader(s *upload.Service) xmpp.Uploader {
	if s == nil {
		return nil
	}
	return xmppUploads{s}
}

func (x xmppUploads) Slot(ctx context.Context, account, filename string, size int64, contentType string) (xmpp.UploadSlot, error) {
	sl, err := x.s.Slot(ctx, account, filename, size, contentType)
	return xmpp.UploadSlot(sl), err
}

func (x xmppUploads) MaxFileBytes() int64 { return x.s.MaxFileBytes() }
