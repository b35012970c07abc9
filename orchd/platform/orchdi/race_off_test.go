//go:build !race

package orchdi_test

const raceBuild = false
