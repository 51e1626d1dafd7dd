package vt

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers branch on. Every error returned by the client for
// an answer from VirusTotal is an *APIError or a *QuotaError that matches one
// of these with errors.Is.
var (
	// ErrNotFound: the object is unknown to VirusTotal (404 NotFoundError).
	// It is an answer, not a failure.
	ErrNotFound = errors.New("not found on VirusTotal")
	// ErrQuota: the key's quota is used up (429 QuotaExceededError or
	// TooManyRequestsError). The error is a *QuotaError.
	ErrQuota = errors.New("VirusTotal quota exceeded")
	// ErrAuth: the key is missing, wrong or inactive (401). Retrying with the
	// same configuration cannot help.
	ErrAuth = errors.New("VirusTotal rejected the API key")
	// ErrForbidden: the key lacks a privilege the request needs (403),
	// e.g. a premium-only endpoint.
	ErrForbidden = errors.New("VirusTotal forbids this request for this key")
	// ErrTransient: VirusTotal or the network failed in a way that a later
	// retry may fix (503 TransientError, other 5xx, connection errors).
	ErrTransient = errors.New("transient VirusTotal error")
	// ErrDeadlineExceeded: VirusTotal took too long (504
	// DeadlineExceededError) or the client's timeout expired. Retryable.
	ErrDeadlineExceeded = errors.New("VirusTotal deadline exceeded")
	// ErrBadRequest: the request itself is wrong for this input (400
	// BadRequestError, InvalidArgumentError, other 4xx). Permanent.
	ErrBadRequest = errors.New("bad request to VirusTotal")
	// ErrNotAvailableYet: the requested data is not ready (400
	// NotAvailableYet). Retry later.
	ErrNotAvailableYet = errors.New("not available yet on VirusTotal")
	// ErrAlreadyExists: 409 AlreadyExistsError.
	ErrAlreadyExists = errors.New("already exists on VirusTotal")
	// ErrTooLarge: a file is larger than VirusTotal accepts (650 MB).
	ErrTooLarge = errors.New("file too large for VirusTotal")
)

// APIError is an error answer from VirusTotal: the HTTP status and the
// error envelope's code and message. errors.Is matches it against the
// sentinel of its class.
type APIError struct {
	Method  string
	Path    string // request path below the base URL, e.g. "files/<hash>"
	Status  int
	Code    string // e.g. "NotFoundError"; empty when the body had no envelope
	Message string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	msg := fmt.Sprintf("vt: %s %s: %d %s", e.Method, e.Path, e.Status, code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is reports whether target is the sentinel for this error's class.
func (e *APIError) Is(target error) bool { return classify(e.Status, e.Code) == target }

// QuotaError is a 429 answer. RetryAfter is the wait the server asked for
// (Retry-After header), zero when it named none: VirusTotal does not say
// whether the minute, day or month quota ran out.
type QuotaError struct {
	APIError
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string {
	s := e.APIError.Error()
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Is matches ErrQuota.
func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

// classify maps a status and error code to a sentinel. The code wins over
// the status when both are known, since proxies may rewrite statuses.
func classify(status int, code string) error {
	switch code {
	case "NotFoundError":
		return ErrNotFound
	case "QuotaExceededError", "TooManyRequestsError":
		return ErrQuota
	case "AuthenticationRequiredError", "WrongCredentialsError", "UserNotActiveError":
		return ErrAuth
	case "ForbiddenError":
		return ErrForbidden
	case "TransientError":
		return ErrTransient
	case "DeadlineExceededError":
		return ErrDeadlineExceeded
	case "NotAvailableYet":
		return ErrNotAvailableYet
	case "AlreadyExistsError":
		return ErrAlreadyExists
	case "BadRequestError", "InvalidArgumentError", "UnselectiveContentQueryError",
		"UnsupportedContentQueryError", "FailedDependencyError":
		return ErrBadRequest
	}
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusTooManyRequests:
		return ErrQuota
	case status == http.StatusUnauthorized:
		return ErrAuth
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusGatewayTimeout:
		return ErrDeadlineExceeded
	case status == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case status == http.StatusConflict:
		return ErrAlreadyExists
	case status >= 500, status == http.StatusRequestTimeout:
		return ErrTransient
	default:
		return ErrBadRequest
	}
}

// parseRetryAfter reads a Retry-After header given in seconds or as an
// HTTP date; it returns zero when absent or unreadable.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil && s >= 0 && s <= math.MaxInt64/int64(time.Second) {
		return min(time.Duration(s)*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}

// MaxRetryAfter caps the wait a Retry-After header can ask for: a day,
// the longest quota window VirusTotal resets without our own figures
// saying more (a hostile or broken answer must not stop work for years).
const MaxRetryAfter = 24 * time.Hour

// Retryable reports whether err is worth retrying later with the same
// request: quota, transient, deadline and not-available-yet errors.
func Retryable(err error) bool {
	return errors.Is(err, ErrQuota) || errors.Is(err, ErrTransient) ||
		errors.Is(err, ErrDeadlineExceeded) || errors.Is(err, ErrNotAvailableYet)
}
