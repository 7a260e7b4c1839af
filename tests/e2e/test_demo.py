"""`make demo` must end with a report whose total spend equals the sum
computed independently from the simulator's usage and the price table.
Runs the demo itself, with the shared data and without it."""
import os
import subprocess
import sys
import unittest

import harness

DEMO = os.path.join(harness.ROOT, "scripts", "demo.py")
RELEASE = os.path.join(harness.ROOT, "tollgate")


class TestDemo(unittest.TestCase):
    def run_demo(self, shared):
        env = dict(os.environ, TOLLGATE_SHARED=shared, TOLLGATE_BIN=RELEASE)
        out = subprocess.run([sys.executable, DEMO], capture_output=True,
                             text=True, env=env, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("demo: they agree to the picodollar", out.stdout)
        self.assertIn("TOTAL", out.stdout)
        return out.stdout

    def test_demo_on_shared_data_agrees_to_the_picodollar(self):
        harness.need_shared(self, "data/routellm-evals/gsm8k_responses.csv")
        harness.need_shared(self, "data/sharegpt-1k-sample/"
                                  "sharegpt_1000_conversations.jsonl")
        text = self.run_demo(str(harness.shared_dir()))
        self.assertIn("x LiteLLM prices", text)
        for task in ("support-chat", "math-tutor", "contract-summary"):
            self.assertIn(task, text)

    def test_demo_without_shared_data_uses_its_own_workload(self):
        text = self.run_demo("/nonexistent/shared")
        self.assertIn("using a generated workload", text)
        self.assertIn("x demo prices", text)


if __name__ == "__main__":
    unittest.main()
