//go:build race

package orchdi_test

// raceBuild: the tests run under the race detector, and so do the supervisors they start.
const raceBuild = true
