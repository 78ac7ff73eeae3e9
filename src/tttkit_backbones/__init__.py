"""Built-in backbone plugins: the thesis's attention network and its variants."""
