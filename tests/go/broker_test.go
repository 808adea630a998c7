// Package compat drives a real `strom broker` process with Go Kafka clients: franz-go (kgo,
// kadm), Sarama and segmentio/kafka-go. Each broker runs on an ephemeral 127.0.0.1 port with
// its data in a temporary directory and is killed by PID when its test (or the package) ends.
package compat

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	brokerStartTimeout = 30 * time.Second
	logTailBytes       = 6000
)

// Broker is one `strom broker` process.
type Broker struct {
	Addr string
	// SecondAddr is the address of a second listener, for tests whose extra config names
	// one with the placeholder {second_port} (e.g. a SASL listener beside PLAINTEXT).
	SecondAddr string
	cmd        *exec.Cmd
	logPath    string
	done       chan struct{} // closed once the process has exited and been reaped
}

// shared is the package's broker (TestMain); tests needing special settings start their own.
var shared *Broker

func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func stromBin() (string, error) {
	bin := os.Getenv("STROM_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), "target", "debug", "strom")
	}
	if st, err := os.Stat(bin); err != nil || st.IsDir() {
		return "", fmt.Errorf("strom binary not found at %s: build it with `cargo build -p strom` or set STROM_BIN", bin)
	}
	return bin, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// baseConfig is what every broker gets: small internal topics (fast start on two cores) and a
// short initial rebalance delay so classic groups settle quickly.
func baseConfig() map[string]string {
	return map[string]string{
		"num.partitions":                       "3",
		"auto.create.topics.enable":            "true",
		"offsets.topic.num.partitions":         "3",
		"transaction.state.log.num.partitions": "3",
		"group.initial.rebalance.delay.ms":     "200",
		"group.consumer.heartbeat.interval.ms": "500",
		"http.listener":                        "127.0.0.1:0",
	}
}

// StartBroker starts a broker in dir with baseConfig overlaid by extra, and waits until it
// accepts TCP.
func StartBroker(dir string, extra map[string]string) (*Broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	secondPort, err := freePort()
	if err != nil {
		return nil, err
	}
	b, err := LaunchBroker(dir, port, secondPort, extra)
	if err != nil {
		return nil, err
	}
	if err := b.WaitListening(time.Now().Add(brokerStartTimeout)); err != nil {
		b.Kill()
		return nil, err
	}
	return b, nil
}

// LaunchBroker starts the process without waiting for it to listen (a cluster node serves
// only once its quorum forms). In extra, {port} and {second_port} name the two ports.
func LaunchBroker(dir string, port, secondPort int, extra map[string]string) (*Broker, error) {
	bin, err := stromBin()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	cfg := baseConfig()
	cfg["log.dirs"] = dataDir
	cfg["listeners"] = fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", port)
	for k, v := range extra {
		v = strings.ReplaceAll(v, "{port}", fmt.Sprint(port))
		cfg[k] = strings.ReplaceAll(v, "{second_port}", fmt.Sprint(secondPort))
	}
	args := []string{"broker"}
	for k, v := range cfg {
		args = append(args, "--set", k+"="+v)
	}
	b := &Broker{Addr: fmt.Sprintf("127.0.0.1:%d", port), SecondAddr: fmt.Sprintf("127.0.0.1:%d", secondPort),
		logPath: filepath.Join(dir, "broker.log"), done: make(chan struct{})}
	logFile, err := os.Create(b.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	b.cmd = exec.Command(bin, args...)
	b.cmd.Stdout = logFile
	b.cmd.Stderr = logFile
	b.cmd.Env = append(os.Environ(), "RUST_BACKTRACE=1")
	if os.Getenv("STROM_LOG") == "" {
		b.cmd.Env = append(b.cmd.Env, "STROM_LOG=info")
	}
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	return b, nil
}

// WaitListening waits until the broker accepts TCP, or fails if it exits or the deadline
// passes.
func (b *Broker) WaitListening(deadline time.Time) error {
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			return fmt.Errorf("strom broker exited during start-up:\n%s", b.LogTail())
		default:
		}
		if c, err := net.DialTimeout("tcp", b.Addr, 500*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("strom broker did not accept TCP on %s in time:\n%s", b.Addr, b.LogTail())
}

// Kill sends SIGKILL to the broker's PID (only the process this package started) and waits
// for it to be reaped.
func (b *Broker) Kill() {
	if b == nil || b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
	}
}

// LogTail is the end of the broker's log, for failure messages.
func (b *Broker) LogTail() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return "(no broker log: " + err.Error() + ")"
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// startBroker gives a test its own broker, killed when the test ends; the log tail is
// printed if the test failed.
func startBroker(t *testing.T, extra map[string]string) *Broker {
	t.Helper()
	b, err := StartBroker(t.TempDir(), extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log tail:\n%s", b.LogTail())
		}
		b.Kill()
	})
	return b
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strom-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	shared, err = StartBroker(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "shared broker log tail:\n%s\n", shared.LogTail())
	}
	shared.Kill()
	os.RemoveAll(dir)
	os.Exit(code)
}

var topicSeq atomic.Int64

// uniqueName gives each test its own topic/group names on the shared broker.
func uniqueName(t *testing.T, kind string) string {
	base := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	return fmt.Sprintf("%s-%s-%d-%d", kind, base, time.Now().UnixNano()%1_000_000, topicSeq.Add(1))
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
