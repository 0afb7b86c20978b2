// Runs every file of fuzz/corpus/<target>/ and fuzz/regressions/<target>/ through that fuzz
// target's entry point (compiled in with a renamed symbol, see CMakeLists.txt). A target that
// crashes, trips a sanitizer or aborts on a check fails this test; the file being replayed is
// printed first, so the culprit is named. Usage: fuzz_replay <fuzz-dir> [target]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define VT_REPLAY(name) extern "C" int vt_replay_##name(const std::uint8_t*, std::size_t);
#include "replay_targets.inc"
#undef VT_REPLAY

namespace {
struct Target {
  const char* name;
  int (*entry)(const std::uint8_t*, std::size_t);
};

#define VT_REPLAY(name) Target{#name, &vt_replay_##name},
const Target kTargets[] = {
#include "replay_targets.inc"
};
#undef VT_REPLAY

std::size_t replay_dir(const Target& t, const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) return 0;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "%s: %s\n", t.name, f.string().c_str());
    t.entry(data.data(), data.size());
  }
  return files.size();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_replay <fuzz-dir> [target]\n");
    return 2;
  }
  const std::filesystem::path root = argv[1];
  std::size_t seeds = 0, regressions = 0;
  for (const Target& t : kTargets) {
    if (argc > 2 && std::string(argv[2]) != t.name) continue;
    std::size_t s = replay_dir(t, root / "corpus" / t.name);
    if (s == 0) {
      std::fprintf(stderr, "%s: no seed corpus in %s\n", t.name, (root / "corpus" / t.name).string().c_str());
      return 1;
    }
    seeds += s;
    regressions += replay_dir(t, root / "regressions" / t.name);
  }
  std::printf("replayed %zu seeds and %zu regression inputs\n", seeds, regressions);
  return 0;
}
