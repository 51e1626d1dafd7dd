// Package httpservertest holds test helpers for servers run by
// internal/httpserver: starting one for the length of a test, and a
// self-signed certificate for TLS. Like httpserver, it imports no
// vtconnector package (so that httpserver's own tests can use it).
package httpservertest
