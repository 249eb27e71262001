# Writes each ```cpp block of README.md to OUT/snippet_N.cpp, as a reader would paste it: the
# #include lines on top, the rest inside a function unless the block is a whole program (it has
# main). #line directives point compiler messages at README.md's own lines.
# Usage: awk -v out=DIR -f readme_snippets.awk README.md
/^```cpp[ \t]*$/ { n++; inside = 1; includes = ""; body = ""; first = NR + 1; next }
inside && /^```[ \t]*$/ {
  f = sprintf("%s/snippet_%d.cpp", out, n)
  printf "#line %d \"%s\"\n%s", first, FILENAME, includes > f
  if (body ~ /int main\(/) {
    printf "#line %d \"%s\"\n%s", body_first, FILENAME, body > f
  } else {
    print "[[maybe_unused]] static void readme_snippet() {" > f
    printf "#line %d \"%s\"\n%s}\n", body_first, FILENAME, body > f
  }
  close(f); inside = 0; next
}
inside && /^#include/ { includes = includes $0 "\n"; next }
inside { if (body == "") body_first = NR; body = body $0 "\n" }
END { print n + 0 }
