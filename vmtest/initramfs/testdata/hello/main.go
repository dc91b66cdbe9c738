// Command hello is a tiny main package BuildAgent's tests build.
package main

import "fmt"

func main() { fmt.Println("hello from the guest") }
