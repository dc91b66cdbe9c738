package compat

// The test objects under testdata/ are committed; regenerating needs clang
// and llvm-strip.
//go:generate sh testdata/build.sh
