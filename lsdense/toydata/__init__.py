"""Small synthetic datasets in real dataset layouts, so training and tests run offline."""
