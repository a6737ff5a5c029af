package gmailsync

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	gmail "google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"
)

// batchGet fetches ids with one HTTP batch request (Google's
// multipart/mixed batch protocol; the generated Go client has no batch
// support). It returns the messages that came back 200 and, per id, the
// error of each item that did not; an error return means the whole batch
// failed and every id should be fetched singly.
func (e *Engine) batchGet(ctx context.Context, ids []string) (map[string]*gmail.Message, map[string]error, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i, id := range ids {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/http")
		h.Set("Content-ID", "<item-"+strconv.Itoa(i)+">")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return nil, nil, fmt.Errorf("build batch: %w", err)
		}
		fmt.Fprintf(pw, "GET /gmail/v1/users/me/messages/%s?format=raw&alt=json\r\n\r\n", url.PathEscape(id))
	}
	if err := mw.Close(); err != nil {
		return nil, nil, fmt.Errorf("build batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.batchURL, &body)
	if err != nil {
		return nil, nil, fmt.Errorf("batch request: %w", err)
	}
	req.Header.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("batch: %w", err)
	}
	defer resp.Body.Close()
	if err := googleapi.CheckResponse(resp); err != nil {
		return nil, nil, err
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return nil, nil, fmt.Errorf("batch: unexpected response type %q", resp.Header.Get("Content-Type"))
	}
	got := map[string]*gmail.Message{}
	failed := map[string]error{}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("batch: read part: %w", err)
		}
		idx, ok := itemIndex(part.Header.Get("Content-ID"))
		if !ok || idx >= len(ids) {
			continue
		}
		id := ids[idx]
		inner, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			failed[id] = fmt.Errorf("batch item: %w", err)
			continue
		}
		if err := googleapi.CheckResponse(inner); err != nil {
			failed[id] = err
			inner.Body.Close()
			continue
		}
		var m gmail.Message
		err = json.NewDecoder(inner.Body).Decode(&m)
		inner.Body.Close()
		if err != nil {
			failed[id] = fmt.Errorf("batch item decode: %w", err)
			continue
		}
		got[id] = &m
	}
	for _, id := range ids {
		if got[id] == nil && failed[id] == nil {
			failed[id] = errors.New("batch: item missing from response")
		}
	}
	return got, failed, nil
}

// itemIndex parses "<response-item-N>" (or "<item-N>").
func itemIndex(cid string) (int, bool) {
	cid = strings.Trim(cid, "<>")
	i := strings.LastIndex(cid, "-")
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(cid[i+1:])
	return n, err == nil && n >= 0
}
