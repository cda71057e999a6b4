#!/usr/bin/env python3
"""Writes products.json: the catalog's bundled snapshot, served when the
upstream (dummyjson.com) cannot answer and nothing is cached.

The products are made up here, deterministically (a fixed seed), in the
JSON shape of https://dummyjson.com/products: {"products", "total", "skip",
"limit"}. Nothing is downloaded. Run it from anywhere:

    python3 components/catalog/data/generate.py

and commit the result.
"""

import json
import random
from pathlib import Path

GENERATED_AT = "2026-11-29T00:00:00.000Z"

# category slug -> (brands, [(noun, base price)], tags)
CATEGORIES = {
    "beauty": (["Glow Lab", "Velvet Rose", "Pure Dew"],
               [("Mascara", 9.99), ("Lipstick", 12.99), ("Eyeshadow Palette", 19.99),
                ("Face Powder", 14.99), ("Nail Polish", 7.99)], ["beauty", "makeup"]),
    "fragrances": (["Aurelle", "Noir Atelier", "Citrine"],
                   [("Eau de Parfum", 79.99), ("Eau de Toilette", 54.99), ("Body Mist", 19.99),
                    ("Cologne", 64.99)], ["fragrances", "perfumes"]),
    "furniture": (["Oakhaven", "Nordlys", "Casa Linea"],
                  [("Bed Frame", 899.99), ("Sofa", 1299.99), ("Bedside Table", 129.99),
                   ("Office Chair", 249.99), ("Bookshelf", 189.99)], ["furniture", "home"]),
    "groceries": (["Green Basket", "Farmhouse", "Daily Harvest"],
                  [("Apples", 1.99), ("Rice", 3.49), ("Olive Oil", 8.99), ("Honey", 6.49),
                   ("Coffee Beans", 11.99), ("Green Tea", 4.99)], ["groceries", "food"]),
    "laptops": (["Vertex", "Lumen", "Arcbook"],
                [("Laptop 13", 999.99), ("Laptop 15 Pro", 1599.99), ("Ultrabook Air", 1199.99),
                 ("Gaming Laptop", 1899.99)], ["electronics", "laptops"]),
    "smartphones": (["Vertex", "Nimbus", "Orion"],
                    [("Phone Mini", 499.99), ("Phone X", 899.99), ("Phone Max", 1099.99),
                     ("Phone Lite", 299.99)], ["electronics", "smartphones"]),
    "mens-shirts": (["Harbor & Co", "Tailor Row", "Ridge"],
                    [("Oxford Shirt", 39.99), ("Flannel Shirt", 34.99), ("Linen Shirt", 44.99),
                     ("Polo Shirt", 29.99)], ["clothing", "men's shirts"]),
    "womens-dresses": (["Maison Lys", "Ivy Lane", "Solstice"],
                       [("Summer Dress", 59.99), ("Evening Gown", 149.99), ("Wrap Dress", 69.99),
                        ("Shirt Dress", 49.99)], ["clothing", "dresses"]),
    "sports-accessories": (["Apex", "Stride", "Kinetic"],
                           [("Football", 24.99), ("Tennis Racket", 89.99), ("Yoga Mat", 29.99),
                            ("Dumbbell Set", 59.99), ("Basketball", 27.99)], ["sports", "fitness"]),
    "kitchen-accessories": (["Hearth", "Copperline", "Mise"],
                            [("Chef Knife", 49.99), ("Cutting Board", 19.99), ("Frying Pan", 39.99),
                             ("Mixing Bowl Set", 24.99), ("Kettle", 34.99)], ["kitchen", "cookware"]),
}

ADJECTIVES = ["Classic", "Essential", "Premium", "Everyday", "Signature", "Deluxe", "Compact"]
SHIPPING = ["Ships in 1-2 business days", "Ships in 3-5 business days", "Ships overnight",
            "Ships in 1 week", "Ships in 2 weeks"]
WARRANTY = ["No warranty", "1 month warranty", "6 months warranty", "1 year warranty",
            "2 year warranty", "Lifetime warranty"]
RETURNS = ["No return policy", "7 days return policy", "30 days return policy",
           "90 days return policy"]
REVIEWERS = ["Ana Souza", "Bruno Lima", "Carla Dias", "Diego Alves", "Elisa Rocha",
             "Felipe Costa", "Gabriela Nunes", "Hugo Pereira"]
COMMENTS = [(5, "Excellent quality!"), (5, "Would buy again!"), (4, "Very satisfied!"),
            (4, "Good value for the price."), (3, "It is okay."), (2, "Not as described."),
            (1, "Very disappointed.")]


def title_name(slug):
    return " ".join(word.capitalize() for word in slug.split("-"))


def product(rng, pid, slug, brand, noun, base, tags):
    title = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
    price = round(base * rng.uniform(0.85, 1.25), 2)
    stock = rng.randint(0, 120)
    reviews = []
    for _ in range(3):
        rating, comment = rng.choice(COMMENTS)
        name = rng.choice(REVIEWERS)
        reviews.append({
            "rating": rating,
            "comment": comment,
            "date": f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T08:00:00.000Z",
            "reviewerName": name,
            "reviewerEmail": name.lower().replace(" ", ".") + "@example.com",
        })
    image = f"https://cdn.dummyjson.com/product-images/{slug}/{pid}"
    return {
        "id": pid,
        "title": title,
        "description": f"The {title.lower()}: a {noun.lower()} from {brand}, "
                       f"made for {title_name(slug).lower()} lovers.",
        "category": slug,
        "price": price,
        "discountPercentage": round(rng.uniform(0, 20), 2),
        "rating": round(rng.uniform(2.5, 5.0), 2),
        "stock": stock,
        "tags": tags,
        "brand": brand,
        "sku": f"{slug[:3].upper()}-{brand[:3].upper()}-{pid:04d}",
        "weight": rng.randint(1, 10),
        "dimensions": {
            "width": round(rng.uniform(5, 50), 2),
            "height": round(rng.uniform(5, 50), 2),
            "depth": round(rng.uniform(5, 50), 2),
        },
        "warrantyInformation": rng.choice(WARRANTY),
        "shippingInformation": rng.choice(SHIPPING),
        "availabilityStatus": "Out of Stock" if stock == 0 else ("Low Stock" if stock < 10 else "In Stock"),
        "reviews": reviews,
        "returnPolicy": rng.choice(RETURNS),
        "minimumOrderQuantity": rng.randint(1, 10),
        "meta": {
            "createdAt": GENERATED_AT,
            "updatedAt": GENERATED_AT,
            "barcode": str(rng.randint(10**12, 10**13 - 1)),
            "qrCode": "https://cdn.dummyjson.com/public/qr-code.png",
        },
        "images": [f"{image}/1.webp", f"{image}/2.webp"],
        "thumbnail": f"{image}/thumbnail.webp",
    }


def main():
    rng = random.Random(4)
    products = []
    for slug, (brands, items, tags) in CATEGORIES.items():
        for noun, base in items:
            for brand in brands:
                products.append((slug, brand, noun, base, tags))
    rng.shuffle(products)
    out = [product(rng, i + 1, *p) for i, p in enumerate(products)]
    # One product per line: compact, and a regenerated file diffs by product.
    lines = ",\n".join(json.dumps(p, separators=(",", ":"), ensure_ascii=False) for p in out)
    text = (f'{{"generatedAt":"{GENERATED_AT}","total":{len(out)},"skip":0,'
            f'"limit":{len(out)},"products":[\n{lines}\n]}}\n')
    json.loads(text)
    path = Path(__file__).with_name("products.json")
    path.write_text(text)
    print(f"{path}: {len(out)} products in {len(CATEGORIES)} categories")


if __name__ == "__main__":
    main()
