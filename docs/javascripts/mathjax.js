// MathJax 3 for the whole page: pymdownx.arithmatex's output (generic mode: \( \) and \[ \]),
// the markdown cells of the executed notebooks ($ $ and $$ $$, written by nbconvert as plain
// text inside <p> elements) and the navigation.  The whole page is searched (code and pre
// are skipped), because an ignore-everything-but-arithmatex filter would also skip the
// paragraphs inside a notebook cell.  A literal dollar sign is written \$.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
};

// Material's instant navigation swaps the page without a reload: typeset again each time.
document$.subscribe(() => {
  if (window.MathJax && MathJax.typesetPromise) {
    MathJax.startup.output.clearCache();
    MathJax.typesetClear();
    MathJax.texReset();
    MathJax.typesetPromise();
  }
});
