// Tests for lib/text/documents and the corpus readers over it: folders, compressed files and archives read as one
// text in the documented order, the filters and the separator, documents that are not text, hostile archives, and
// the manifest a resumed run compares.
#include <doctest/doctest.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"
#include "text/corpus.h"
#include "text/documents.h"
#include "util/errors.h"
#include "util/utf8.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// One entry of an archive the tests write: a regular file unless `type` says otherwise.
struct Member {
  Member(std::string name_, std::string bytes_, unsigned type_ = AE_IFREG, std::string link_ = "")
      : name(std::move(name_)), bytes(std::move(bytes_)), type(type_), link(std::move(link_)) {}
  std::string name;
  std::string bytes;
  unsigned type;
  std::string link;  // a symbolic or hard link's target
};

enum class Filter { kNone, kGzip, kXz, kZstd, kBzip2 };

void AddFilter(archive* writer, Filter filter) {
  switch (filter) {
    case Filter::kNone: break;
    case Filter::kGzip: REQUIRE(archive_write_add_filter_gzip(writer) == ARCHIVE_OK); break;
    case Filter::kXz: REQUIRE(archive_write_add_filter_xz(writer) == ARCHIVE_OK); break;
    case Filter::kZstd: REQUIRE(archive_write_add_filter_zstd(writer) == ARCHIVE_OK); break;
    case Filter::kBzip2: REQUIRE(archive_write_add_filter_bzip2(writer) == ARCHIVE_OK); break;
  }
}

// A tar (pax) or zip archive of `members`, written with libarchive (the test's own writer, independent of the
// reader under test but for the library).
void WriteArchive(const fs::path& path, const std::vector<Member>& members, Filter filter, bool zip = false) {
  archive* writer = archive_write_new();
  REQUIRE(writer != nullptr);
  REQUIRE((zip ? archive_write_set_format_zip(writer) : archive_write_set_format_pax_restricted(writer)) == ARCHIVE_OK);
  AddFilter(writer, filter);
  REQUIRE(archive_write_open_filename(writer, path.c_str()) == ARCHIVE_OK);
  for (const Member& member : members) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, member.name.c_str());
    archive_entry_set_filetype(entry, member.type);
    archive_entry_set_perm(entry, 0644);
    if (member.type == AE_IFLNK) archive_entry_set_symlink(entry, member.link.c_str());
    if (member.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(1, 3));
    if (!member.link.empty() && member.type == AE_IFREG) archive_entry_set_hardlink(entry, member.link.c_str());
    archive_entry_set_size(entry, member.type == AE_IFREG && member.link.empty() ? static_cast<la_int64_t>(member.bytes.size()) : 0);
    REQUIRE(archive_write_header(writer, entry) == ARCHIVE_OK);
    if (member.type == AE_IFREG && member.link.empty() && !member.bytes.empty()) {
      REQUIRE(archive_write_data(writer, member.bytes.data(), member.bytes.size()) ==
              static_cast<la_ssize_t>(member.bytes.size()));
    }
    archive_entry_free(entry);
  }
  REQUIRE(archive_write_close(writer) == ARCHIVE_OK);
  archive_write_free(writer);
}

// A compressed file holding `bytes` (no archive around it); `repeat` copies of it, for a bomb.
void WriteCompressed(const fs::path& path, const std::string& bytes, Filter filter, std::size_t repeat = 1) {
  archive* writer = archive_write_new();
  REQUIRE(archive_write_set_format_raw(writer) == ARCHIVE_OK);
  AddFilter(writer, filter);
  REQUIRE(archive_write_open_filename(writer, path.c_str()) == ARCHIVE_OK);
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, "data");
  archive_entry_set_filetype(entry, AE_IFREG);
  REQUIRE(archive_write_header(writer, entry) == ARCHIVE_OK);
  for (std::size_t k = 0; k < repeat; ++k) {
    REQUIRE(archive_write_data(writer, bytes.data(), bytes.size()) == static_cast<la_ssize_t>(bytes.size()));
  }
  archive_entry_free(entry);
  REQUIRE(archive_write_close(writer) == ARCHIVE_OK);
  archive_write_free(writer);
}

CorpusSource Source(const fs::path& path) { return CorpusSource::File(path.string()); }

std::string Text(const CorpusSource& source) {
  return EncodeUtf8(ReadCorpus(source, NewlinePolicy::kKeep, 0));
}

std::string ErrorOf(const CorpusSource& source, std::int64_t max_chars = 0) {
  try {
    ReadCorpus(source, NewlinePolicy::kKeep, max_chars);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

const std::string kBinary("\x7F" "ELF\x02\x01\x01\0\0\0\xff\xfe", 12);

// A folder of nested plain files, one compressed file of each kind, a .tar.gz with code and a binary, and a zip.
void WriteMixedFolder(const fs::path& root) {
  fs::create_directories(root / "b" / "deep");
  testing::WriteFile(root / "a.txt", "alpha\n");
  testing::WriteFile(root / "b" / "deep" / "c.txt", "\xEF\xBB\xBFgamma 龙");  // a BOM, skipped, and no final newline
  testing::WriteFile(root / "b" / "beta.txt", "beta\r\nline\n");            // read as "\n"
  testing::WriteFile(root / "binary.dat", kBinary);
  WriteCompressed(root / "d.txt.gz", "gz text\n", Filter::kGzip);
  WriteCompressed(root / "e.txt.xz", "xz text\n", Filter::kXz);
  WriteCompressed(root / "f.txt.zst", "zst text\n", Filter::kZstd);
  WriteCompressed(root / "g.txt.bz2", "bz2 text\n", Filter::kBzip2);
  WriteArchive(root / "h.tar.gz",
               {{"src/", "", AE_IFDIR}, {"src/main.c", "int main(void) { return 0; }\n"},
                {"src/util.h", "#define N 3\n"}, {"src/tool", kBinary}},
               Filter::kGzip);
  WriteArchive(root / "i.zip", {{"notes/readme.md", "# zip\n"}, {"notes/x.c", "int x;\n"}}, Filter::kNone, true);
}

}  // namespace

TEST_CASE("documents: a folder of files, compressed files and archives reads as their concatenation in sorted order") {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "mixed";
  WriteMixedFolder(root);
  // The documented order: the folder's files by path (b/beta.txt before b/deep/...), archive members in archive
  // order; "\n" between two documents; the binary file and the binary member left out.
  const std::string expected = std::string("alpha\n") + "\n" + "beta\nline\n" + "\n" + "gamma 龙" + "\n" +
                               "gz text\n" + "\n" + "xz text\n" + "\n" + "zst text\n" + "\n" + "bz2 text\n" + "\n" +
                               "int main(void) { return 0; }\n" + "\n" + "#define N 3\n" + "\n" + "# zip\n" + "\n" +
                               "int x;\n";
  CHECK(Text(Source(root)) == expected);

  // The ids training reads are those of the same text, and the counts say what was read and left out.
  const CorpusIds corpus = ReadCorpusIds(Source(root), NewlinePolicy::kKeep, 0, 1);
  const std::u32string decoded = DecodeUtf8(expected, "expected");
  REQUIRE(corpus.ids.size() == decoded.size());
  for (std::size_t k = 0; k < decoded.size(); ++k) CHECK(corpus.vocab.CharAt(corpus.ids.view()[k]) == decoded[k]);
  CHECK(corpus.notes.documents == 13);
  CHECK(corpus.notes.skipped == 2);
  CHECK(corpus.notes.manifest.size() == 11);
  CHECK(corpus.notes.manifest[0].member == "a.txt");
  CHECK(corpus.notes.manifest[7].member == "h.tar.gz:src/main.c");

  // A list of paths reads each in turn, files named directly included.
  CorpusSource list;
  list.paths = {(root / "a.txt").string(), (root / "b").string(), (root / "d.txt.gz").string()};
  CHECK(Text(list) == "alpha\n\nbeta\nline\n\ngamma 龙\ngz text\n");
}

TEST_CASE("documents: include and exclude judge the paths of a folder's files and of archive members") {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "mixed";
  WriteMixedFolder(root);
  CorpusSource code = Source(root);
  code.include = {"*.c", "*.h"};
  CHECK(Text(code) == "int main(void) { return 0; }\n\n#define N 3\n\nint x;\n");
  code.exclude = {"*util*"};
  CHECK(Text(code) == "int main(void) { return 0; }\n\nint x;\n");

  // A compressed file is judged by its name without the compression's extension.
  CorpusSource texts = Source(root);
  texts.include = {"*.txt"};
  texts.exclude = {"b/*", "*zst*"};
  texts.separator = "|";
  CHECK(Text(texts) == "alpha\n|gz text\n|xz text\n|bz2 text\n");

  texts.separator = "";
  texts.exclude = {"*"};
  CHECK(ErrorOf(texts).find("has no text: no documents were found") != std::string::npos);
}

TEST_CASE("documents: a document that is not text is skipped and counted, or with on_invalid error names it") {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "texts";
  fs::create_directories(root);
  testing::WriteFile(root / "a.txt", "good\n");
  testing::WriteFile(root / "b.txt", std::string("half good, then \xC3\x28 bad\n"));  // invalid UTF-8 late
  testing::WriteFile(root / "c.txt", "more\n");
  CHECK(Text(Source(root)) == "good\n\nmore\n");  // b.txt's characters before the bad byte are taken back
  const CorpusIds corpus = ReadCorpusIds(Source(root), NewlinePolicy::kKeep, 0, 1);
  CHECK(corpus.notes.skipped == 1);
  CHECK(!corpus.vocab.Find(U'h').has_value());  // only b.txt had an 'h': its counts were undone too

  CorpusSource strict = Source(root);
  strict.on_invalid = InvalidDocumentPolicy::kError;
  const std::string error = ErrorOf(strict);
  CHECK(error.find("corpus document '" + (root / "b.txt").generic_string() + "' is not UTF-8 text") == 0);
  CHECK(error.find("data.on_invalid=skip") != std::string::npos);

  // A file named on its own keeps the plain reader's error, compressed or not.
  CHECK(ErrorOf(Source(root / "b.txt")).find("invalid UTF-8") != std::string::npos);
  WriteCompressed(root / "bad.gz", "x\xC3\x28", Filter::kGzip);
  CHECK(ErrorOf(Source(root / "bad.gz")).find("invalid UTF-8") != std::string::npos);
}

TEST_CASE("documents: hostile archives are counted skips or one-line errors, and nothing is written") {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "in";
  fs::create_directories(root);
  std::string inner;
  {
    WriteCompressed(root / "inner.gz", "nested\n", Filter::kGzip);
    inner = testing::ReadFile(root / "inner.gz");
    fs::remove(root / "inner.gz");
  }
  WriteArchive(root / "evil.tar",
               {{"../escaped.txt", "up\n"},
                {"/tmp/charlm_absolute_member.txt", "abs\n"},
                {"link", "", AE_IFLNK, "/etc/passwd"},
                {"device", "", AE_IFCHR},
                {"fifo", "", AE_IFIFO},
                {"hard", "", AE_IFREG, "../escaped.txt"},
                {"nested.gz", inner},
                {"ok.txt", "ok\n"}},
               Filter::kNone);
  const CorpusIds corpus = ReadCorpusIds(Source(root), NewlinePolicy::kKeep, 0, 1);
  CHECK(EncodeUtf8(ReadCorpus(Source(root), NewlinePolicy::kKeep, 0)) == "up\n\nabs\n\nok\n");
  CHECK(corpus.notes.skipped == 5);  // the link, the device, the FIFO, the hard link, the nested archive
  CHECK(!fs::exists(fs::path(dir.path()) / "escaped.txt"));
  CHECK(!fs::exists("/tmp/charlm_absolute_member.txt"));
  CHECK(fs::directory_iterator(root) != fs::directory_iterator());
  CHECK(std::distance(fs::directory_iterator(root), fs::directory_iterator()) == 1);  // evil.tar alone

  // A truncated stream: one line naming the file, never a hang.
  const std::string whole = testing::ReadFile(root / "evil.tar");
  WriteArchive(fs::path(dir.path()) / "full.tar.xz", {{"a.txt", std::string(200000, 'a')}}, Filter::kXz);
  const std::string packed = testing::ReadFile(fs::path(dir.path()) / "full.tar.xz");
  testing::WriteFile(fs::path(dir.path()) / "cut.tar.xz", packed.substr(0, packed.size() / 2));
  const std::string cut = ErrorOf(Source(fs::path(dir.path()) / "cut.tar.xz"));
  CHECK(cut.find("cut.tar.xz") != std::string::npos);
  CHECK_MESSAGE(cut.find("check that it is complete") != std::string::npos, cut);
  CHECK(cut.find('\n') == std::string::npos);
  testing::WriteFile(fs::path(dir.path()) / "cut.tar", whole.substr(0, 700));
  CHECK(ErrorOf(Source(fs::path(dir.path()) / "cut.tar")).find("cut.tar") != std::string::npos);
}

TEST_CASE("documents: a bomb stops at data.max_chars without reading the rest") {
  TempDir dir;
  const fs::path bomb = fs::path(dir.path()) / "bomb.zst";
  // 256 MB of text in a few kilobytes.
  WriteCompressed(bomb, std::string(1 << 20, 'a'), Filter::kZstd, 256);
  CHECK(fs::file_size(bomb) < 100000);
  const CorpusIds corpus = ReadCorpusIds(Source(bomb), NewlinePolicy::kKeep, 1000, 1);
  CHECK(corpus.ids.size() == 1000);
  CHECK(corpus.notes.file_bytes < (std::uint64_t{1} << 20));  // reading stopped within the first piece
}

TEST_CASE("documents: a folder that names itself through a link is not walked for ever, and depth is bounded") {
  TempDir dir;
  const fs::path root = fs::path(dir.path()) / "loop";
  fs::create_directories(root / "sub");
  testing::WriteFile(root / "sub" / "a.txt", "a\n");
  fs::create_directory_symlink("..", root / "sub" / "up");
  const CorpusIds corpus = ReadCorpusIds(Source(root), NewlinePolicy::kKeep, 0, 1);
  CHECK(corpus.ids.size() == 2);
  CHECK(corpus.notes.skipped == 1);  // the link to a folder

  fs::path deep = fs::path(dir.path()) / "deep";
  for (int level = 0; level < 70; ++level) deep /= "d";
  fs::create_directories(deep);
  testing::WriteFile(deep / "x.txt", "x\n");
  const std::string error = ErrorOf(Source(fs::path(dir.path()) / "deep"));
  CHECK(error.find("nests deeper than 64 levels") != std::string::npos);
}

TEST_CASE("documents: the manifest tells the first document that changed") {
  const std::vector<ManifestEntry> then = {{"x/a.txt", "a.txt", 5, 1}, {"x/b.txt", "b.txt", 7, 2}};
  CHECK(ManifestDifference(then, then).empty());
  auto now = then;
  now[1].hash = 3;
  CHECK(ManifestDifference(then, now) == "document 'b.txt' has other contents of the same size");
  now[1].bytes = 9;
  CHECK(ManifestDifference(then, now) == "document 'b.txt' has 9 bytes now, 7 then");
  now.pop_back();
  CHECK(ManifestDifference(then, now) == "document 'b.txt' is gone");
  CHECK(ManifestDifference(now, then) == "document 'b.txt' is new");
  // The same text under another spelling of its folder is the same corpus; names round-trip through JSON.
  auto moved = then;
  moved[0].name = "elsewhere/a.txt";
  CHECK(ManifestDifference(then, moved).empty());
  const std::vector<ManifestEntry> back = ManifestFromJson(ManifestToJson(then), "test");
  REQUIRE(back.size() == 2);
  CHECK(back[1].name == "x/b.txt");
  CHECK(back[1].SameAs(then[1]));
  CHECK_THROWS_AS(ManifestFromJson(nlohmann::json::array({nlohmann::json::array({1, 2})}), "t"), UserError);
}

TEST_CASE("documents: a corpus path's run name drops folders, trailing slashes and packing extensions") {
  testing::TempDir dir;
  fs::create_directories(dir / "my.texts");
  CHECK(CorpusRunName("notes.txt") == "notes");
  CHECK(CorpusRunName("a/b/notes.txt.gz") == "notes");
  CHECK(CorpusRunName("chat.log.zst") == "chat");
  CHECK(CorpusRunName("linux-source-6.1.tar.xz") == "linux-source-6.1");
  CHECK(CorpusRunName("songs.tgz") == "songs");
  CHECK(CorpusRunName("songs.zip") == "songs");
  CHECK(CorpusRunName("GPL-3") == "GPL-3");
  CHECK(CorpusRunName("mytexts/") == "mytexts");
  CHECK(CorpusRunName((dir / "my.texts").string() + "/") == "my.texts");  // a folder keeps its dots
  CHECK(CorpusRunName("/") == "");
  CHECK(CorpusRunName("") == "");
}

}  // namespace charlm
