// Package sidecache is a small client for the sidecache sidecar (standard
// library only).
//
//	sc := sidecache.New("")                       // SIDECACHE_URL or http://127.0.0.1:7070
//	var u User
//	found, err := sc.Get(ctx, "user", url.Values{"org_id": {org}, "user_id": {id}}, &u)
//	err = sc.InvalidateKey(ctx, "user", url.Values{"org_id": {org}, "user_id": {id}})
package sidecache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Error is sidecache's JSON error body.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

type Client struct {
	Base    string
	HTTP    *http.Client
	Retries int
	// LastCacheStatus is the Cache-Status of the last answer (not safe for
	// concurrent use; read the header yourself if you share a Client).
	LastCacheStatus string
}

func New(base string) *Client {
	if base == "" {
		base = os.Getenv("SIDECACHE_URL")
	}
	if base == "" {
		base = "http://127.0.0.1:7070"
	}
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 2 * time.Second}, Retries: 2}
}

func (c *Client) call(ctx context.Context, method, path string, body any, out any) error {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return err
		}
		c.LastCacheStatus = resp.Header.Get("Cache-Status")
		if resp.StatusCode == http.StatusOK {
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(out)
		}
		e := &Error{Status: resp.StatusCode}
		_ = json.NewDecoder(resp.Body).Decode(e)
		resp.Body.Close()
		// 503 is "try again shortly" (PostgreSQL or Redis away, queue full).
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < c.Retries {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			if secs < 1 {
				secs = 1
			}
			time.Sleep(time.Duration(secs) * 250 * time.Millisecond)
			continue
		}
		return e
	}
}

// Get decodes the entity into out; found is false on 404 not_found.
func (c *Client) Get(ctx context.Context, entity string, params url.Values, out any) (found bool, err error) {
	err = c.call(ctx, http.MethodGet, "/v1/entities/"+entity+"?"+params.Encode(), nil, out)
	if e, ok := err.(*Error); ok && e.Status == http.StatusNotFound && e.Code == "not_found" {
		return false, nil
	}
	return err == nil, err
}

// Request is one item of a GetMany.
type Request struct {
	Entity string            `json:"entity"`
	Params map[string]string `json:"params"`
}

// Result is one item's answer: Body holds the value when Status is 200;
// Err the error otherwise (404 not_found included).
type Result struct {
	Status int             `json:"status"`
	Cache  string          `json:"cache"`
	Body   json.RawMessage `json:"body"`
	Err    *Error          `json:"error"`
}

// GetMany reads many entities in one request; the results are in request order.
func (c *Client) GetMany(ctx context.Context, reqs []Request) ([]Result, error) {
	var out struct {
		Results []Result `json:"results"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/batch", map[string]any{"requests": reqs}, &out); err != nil {
		return nil, err
	}
	for i := range out.Results {
		if e := out.Results[i].Err; e != nil {
			e.Status = out.Results[i].Status
		}
	}
	return out.Results, nil
}

// InvalidateKey drops the one key a Get with these params reads.
func (c *Client) InvalidateKey(ctx context.Context, entity string, params url.Values) error {
	var ignored map[string]any
	return c.call(ctx, http.MethodDelete, "/v1/entities/"+entity+"?"+params.Encode(), nil, &ignored)
}

// Invalidate takes {"tenant": ...}, {"entity": ...}, {"entity": ..., "tenant": ...},
// {"entity": ..., "params": {...}} or {"tenant": ..., "tag": "project:42"}.
func (c *Client) Invalidate(ctx context.Context, body map[string]any) error {
	var ignored map[string]any
	return c.call(ctx, http.MethodPost, "/v1/invalidate", body, &ignored)
}
